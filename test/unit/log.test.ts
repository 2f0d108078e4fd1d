import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createLogger, redactUrl } from '../../src/log.js'
import { captureLogs } from '../support/runtime.js'

test('URLs with credentials never reach the log', () => {
  const { stream, lines } = captureLogs()
  const log = createLogger('info', stream)
  log.info(
    { config: { redisUrl: 'redis://:hunter2@cache:6379', databaseUrl: 'postgres://u:pw@db/x' } },
    'starting',
  )
  log.info({ redis: { password: 'hunter2' } }, 'connecting')
  assert.deepEqual(
    lines.map((l) => ({ msg: l.msg, config: l.config, redis: l.redis })),
    [
      { msg: 'starting', config: { redisUrl: '[Redacted]', databaseUrl: '[Redacted]' }, redis: undefined },
      { msg: 'connecting', config: undefined, redis: { password: '[Redacted]' } },
    ],
  )
  assert.equal(JSON.stringify(lines).includes('hunter2'), false)
})

test('redactUrl masks the password and keeps the rest', () => {
  assert.equal(redactUrl('redis://user:secret@cache:6380/2'), 'redis://user:***@cache:6380/2')
  assert.equal(redactUrl('redis://cache:6379'), 'redis://cache:6379')
  assert.equal(redactUrl('::'), '[unparseable url]')
})
