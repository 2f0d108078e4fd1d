import assert from 'node:assert/strict'
import path from 'node:path'
import { test } from 'node:test'
import { createPublisher } from '../../src/publish.js'
import { FIXTURES, runCli } from '../support/daemon.js'
import { eventually, groupInfo, pendingCount, readAll, testRedis } from '../support/redis.js'
import { startTestRuntime } from '../support/runtime.js'

test('ackstate publish writes the documented entry format and prints the ids', async (t) => {
  const { redis, key } = testRedis(t)
  const stream = key('orders')
  const cli = runCli(t, [
    'publish',
    '--stream',
    stream,
    '--payload',
    '{"total":42}',
    '--id',
    'o-1',
    '--header',
    'content-type=application/json',
    '--field',
    'source=cli',
  ])
  assert.equal((await cli.exited).code, 0, cli.stderr())
  const [[entryId, fields]] = (await readAll(redis, stream)) as [[string, Record<string, string>]]
  const printed = cli.logs[0]
  assert.deepEqual(printed, { id: 'o-1', stream, entryId })
  const headers = JSON.parse(fields.headers!) as Record<string, string>
  assert.deepEqual(
    { ...fields, headers: { ...headers, 'published-at': 'x' } },
    {
      id: 'o-1',
      payload: '{"total":42}',
      source: 'cli',
      headers: { 'content-type': 'application/json', 'published-at': 'x' },
    },
  )
})

test('publishMany sends all messages in order, each with a distinct UUIDv7 id', async (t) => {
  const { redis, key } = testRedis(t)
  const stream = key('orders')
  const publisher = createPublisher({ redis })
  const results = await publisher.publishMany(
    Array.from({ length: 50 }, (_, i) => ({ stream, payload: { i } })),
  )
  const rows = await readAll(redis, stream)
  assert.deepEqual(
    rows.map(([entryId, f]) => ({ entryId, id: f.id, payload: f.payload })),
    results.map((r, i) => ({ entryId: r.entryId, id: r.id, payload: JSON.stringify({ i }) })),
  )
  assert.equal(new Set(results.map((r) => r.id)).size, 50)
})

test('a publish that Redis refuses rejects with a coded error instead of being dropped', async (t) => {
  const publisher = createPublisher({ redisUrl: 'redis://127.0.0.1:1' })
  t.after(() => publisher.close())
  await assert.rejects(publisher.publish({ stream: 'test:nowhere', payload: 'x' }), {
    code: 'ACK_ERR_REDIS_UNAVAILABLE',
  })
  const { redis, key } = testRedis(t)
  await redis.set(key('string'), 'x')
  await assert.rejects(createPublisher({ redis }).publish({ stream: key('string'), payload: 'x' }), {
    code: 'ACK_ERR_REDIS_COMMAND',
    message: /WRONGTYPE/,
  })
})

test('a handler that kills its worker fails only its own batch; the pool is refilled and consuming goes on', async (t) => {
  const { redis, key } = testRedis(t)
  const stream = key('orders')
  const { logs } = await startTestRuntime(t, {
    consumers: [
      {
        name: 'orders',
        stream,
        group: 'g',
        handler: path.join(FIXTURES, 'exits.mjs'),
        batchSize: 1,
        concurrency: 1,
      },
    ],
  })
  const killer = (await redis.xadd(stream, '*', 'payload', 'exit'))!
  await eventually(() => logs.some((l) => l.msg === 'handler failed; retrying'), { what: 'the crash' })
  await redis.xadd(stream, '*', 'payload', 'fine')
  await eventually(
    async () => {
      const pending = (await redis.xpending(stream, 'g', '-', '+', 10)) as [string][]
      const info = await groupInfo(redis, stream, 'g')
      return pending.length === 1 && pending[0]![0] === killer && info['entries-read'] === 2
    },
    { what: 'the second entry to be handled' },
  )
  const crash = logs.find((l) => l.msg === 'handler failed; retrying')!
  assert.equal((crash.err as { code: string }).code, 'ACK_ERR_HANDLER_CRASHED')
  assert.equal(await pendingCount(redis, stream, 'g'), 1)
})
