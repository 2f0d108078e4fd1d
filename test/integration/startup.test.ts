import assert from 'node:assert/strict'
import path from 'node:path'
import { test } from 'node:test'
import { FIXTURES, runCli, writeConfig } from '../support/daemon.js'
import { testPool } from '../support/pool.js'

const handler = (name: string) => path.join(FIXTURES, name)
const consumer = { name: 'orders', stream: 'test:startup:orders', handler: handler('ok.mjs') }

/** Each case: config (and env), the code, and what the one-line message must say. */
const cases: { what: string; config: unknown; env?: Record<string, string>; message: RegExp }[] = [
  {
    what: 'an unknown key',
    config: { consumers: [consumer], logLevl: 'debug' },
    message:
      /ACK_ERR_CONFIG: Invalid config in .*config\.json: configuration param 'logLevl' not declared in the schema \(remove it/,
  },
  {
    what: 'a bad number',
    config: { consumers: [{ ...consumer, batchSize: -5 }] },
    message:
      /ACK_ERR_CONFIG: consumers\[0\]\.batchSize \(entries per read\) must be a whole number from 1 to 10000, got -5\. Fix it in .*config\.json\./,
  },
  {
    what: 'an http:// Redis URL',
    config: { consumers: [consumer] },
    env: { REDIS_URL: 'http://x' },
    message:
      /ACK_ERR_CONFIG: .*redisUrl: has protocol "http:", expected redis: or rediss:\. Use redis:\/\/127\.0\.0\.1:6379/,
  },
  {
    what: 'an empty Redis URL',
    config: { consumers: [consumer] },
    env: { REDIS_URL: '' },
    message: /ACK_ERR_CONFIG: .*redisUrl: must be set, e\.g\. redis:\/\/127\.0\.0\.1:6379/,
  },
  {
    what: 'a shutdown timeout of 30 s',
    config: { consumers: [consumer], shutdown: { timeoutMs: 30000 } },
    message: /ACK_ERR_CONFIG: .*shutdown\.timeoutMs: must be a whole number of ms from 1000 to 29999/,
  },
  {
    what: 'a missing handler module',
    config: { consumers: [{ ...consumer, handler: './nowhere.mjs' }] },
    message:
      /ACK_ERR_HANDLER_NOT_FOUND: consumers\[0\]\.handler: module .*nowhere\.mjs does not exist\. The path is relative to/,
  },
  {
    what: 'a module without a function export',
    config: { consumers: [{ ...consumer, handler: handler('noExport.mjs') }] },
    message:
      /ACK_ERR_HANDLER_INVALID: Handler module .*noExport\.mjs exports no function \(exports: name\)\. Export the handler as the default export or as a named export `handle`\./,
  },
  {
    what: 'a module that throws at import',
    config: { consumers: [{ ...consumer, handler: handler('throwsAtImport.mjs') }] },
    message:
      /ACK_ERR_HANDLER_IMPORT: Handler module .*throwsAtImport\.mjs threw while loading: Error: missing SECRET_KEY\. Fix the module/,
  },
]

for (const c of cases) {
  test(`start-up stops with one clear message and exit 1 for ${c.what}`, async (t) => {
    // An unreachable Redis proves nothing connects first: the message is the config error, not a timeout.
    const daemon = runCli(t, ['start', '--config', writeConfig(t, c.config)], {
      REDIS_URL: 'redis://127.0.0.1:1',
      ...c.env,
    })
    const { code } = await daemon.exited
    assert.equal(code, 1)
    const lines = daemon.stderr().trim().split('\n')
    assert.equal(lines.length, 1, daemon.stderr())
    assert.match(lines[0]!, c.message)
    assert.deepEqual(daemon.logs, [], 'nothing was started, so nothing was logged')
  })
}

test('start-up without any config names both ways to give one', async (t) => {
  const daemon = runCli(t, ['start'])
  assert.equal((await daemon.exited).code, 1)
  assert.match(
    daemon.stderr(),
    /ACK_ERR_CONFIG: No config file given\. Pass --config FILE or set ACKSTATE_CONFIG/,
  )
})

test('ACKSTATE_CONFIG is read when --config is absent', async (t) => {
  const file = writeConfig(t, { consumers: [{ ...consumer, handler: handler('noExport.mjs') }] })
  const daemon = runCli(t, ['start'], { ACKSTATE_CONFIG: file })
  assert.equal((await daemon.exited).code, 1)
  assert.match(daemon.stderr(), /noExport\.mjs exports no function/)
})

test('a CommonJS module with a named handle export is accepted', async (t) => {
  await testPool(t, handler('named.cjs')).probe()
})

test('an unknown command points at help', async (t) => {
  const daemon = runCli(t, ['strat'])
  assert.equal((await daemon.exited).code, 1)
  assert.match(daemon.stderr(), /ACK_ERR_USAGE: Unknown command "strat"\. Run `ackstate help`/)
})
