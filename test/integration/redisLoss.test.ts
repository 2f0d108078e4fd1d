import assert from 'node:assert/strict'
import path from 'node:path'
import { test, type TestContext } from 'node:test'
import { Redis } from 'ioredis'
import { createPublisher } from '../../src/publish.js'
import { FIXTURES, runCli } from '../support/daemon.js'
import { query } from '../support/postgres.js'
import { ownRedis } from '../support/redisServer.js'
import { eventually, readAll, testRedis, waitForEntries } from '../support/redis.js'
import { startTestRuntime } from '../support/runtime.js'
import { migratedStore } from '../support/store.js'

const ok = path.join(FIXTURES, 'ok.mjs')
async function setup(t: TestContext) {
  const own = await ownRedis(t)
  const shared = testRedis(t) // the handlers record what they ran in the shared Redis, which survives
  const { db, store } = await migratedStore(t)
  const redis = new Redis(own.url, { maxRetriesPerRequest: 1 })
  redis.on('error', () => {})
  t.after(() => redis.disconnect())
  const publisher = createPublisher({ redisUrl: own.url, store })
  t.after(() => publisher.close())
  return {
    own,
    redis,
    seenRedis: shared.redis,
    seen: shared.key('seen'),
    db,
    store,
    publisher,
    stream: 'orders',
  }
}

/** Message ids the handler ran, in order. */
async function handled(redis: Redis, seen: string): Promise<string[]> {
  return (await readAll(redis, seen)).map(([, f]) => (JSON.parse(f.message!) as { id: string }).id)
}

const statuses = (url: string) =>
  query<{ message_id: string; status: string }>(
    url,
    'SELECT message_id, status FROM redis_message_backup ORDER BY message_id',
  )

test('Redis down: publish rejects and leaves a pending row; when Redis is back the message is handled once', async (t) => {
  const s = await setup(t)
  await startTestRuntime(
    t,
    {
      republish: { afterMs: 200, intervalMs: 100 },
      consumers: [{ name: 'orders', stream: s.stream, group: 'g', handler: ok, blockMs: 100 }],
    },
    { databaseUrl: s.db.url, redisUrl: s.own.url },
  )
  await s.own.kill()
  await assert.rejects(
    s.publisher.publish({ stream: s.stream, id: 'm-1', payload: '{}', fields: { seen: s.seen } }),
    {
      code: 'ACK_ERR_REDIS_UNAVAILABLE',
    },
  )
  assert.deepEqual(await statuses(s.db.url), [{ message_id: 'm-1', status: 'pending' }])
  await s.own.start()
  await waitForEntries(s.seenRedis, s.seen, 1, 20_000)
  await eventually(async () => (await statuses(s.db.url))[0]!.status === 'acked', { timeoutMs: 10_000 })
  await new Promise((r) => setTimeout(r, 500))
  assert.deepEqual(await handled(s.seenRedis, s.seen), ['m-1'], 'handled exactly once')
})

test('the daemon survives FLUSHALL while blocked in XREADGROUP and goes on consuming by itself', async (t) => {
  const s = await setup(t)
  const { logs } = await startTestRuntime(
    t,
    { consumers: [{ name: 'orders', stream: s.stream, group: 'g', handler: ok, blockMs: 2_000 }] },
    { databaseUrl: s.db.url, redisUrl: s.own.url },
  )
  await s.publisher.publish({ stream: s.stream, id: 'before', payload: '{}', fields: { seen: s.seen } })
  await waitForEntries(s.seenRedis, s.seen, 1)
  await new Promise((r) => setTimeout(r, 200)) // the consumer is back in its blocking read
  await s.redis.flushall()
  await s.publisher.publish({ stream: s.stream, id: 'after', payload: '{}', fields: { seen: s.seen } })
  await waitForEntries(s.seenRedis, s.seen, 2, 15_000)
  assert.deepEqual(await handled(s.seenRedis, s.seen), ['before', 'after'])
  assert.ok(logs.some((l) => l.msg === 'consumer group created' && logs.indexOf(l) > 0))
})

test('publish N, consume part, FLUSHALL, recover: every unacked message is handled, acked ones are not re-sent', async (t) => {
  const s = await setup(t)
  const config = { consumers: [{ name: 'orders', stream: s.stream, group: 'g', handler: ok, blockMs: 100 }] }
  const first = await startTestRuntime(t, config, { databaseUrl: s.db.url, redisUrl: s.own.url })
  const part = ['a-1', 'a-2', 'a-3']
  await s.publisher.publishMany(
    part.map((id) => ({ stream: s.stream, id, payload: '{}', fields: { seen: s.seen } })),
  )
  await eventually(async () => (await statuses(s.db.url)).every((r) => r.status === 'acked'), {
    what: 'the first part acked',
  })
  first.runtime.shutdown()
  await first.runtime.done

  const rest = ['b-1', 'b-2', 'b-3', 'b-4']
  await s.publisher.publishMany(
    rest.map((id) => ({ stream: s.stream, id, payload: '{}', fields: { seen: s.seen } })),
  )
  await s.redis.flushall()
  // Sent (the publishes resolved: XADD confirmed), then lost: what recovery must bring back. The rows
  // stay pending while their publisher lives; recovery diffs them however young.
  assert.deepEqual(
    (await statuses(s.db.url)).filter((r) => r.status !== 'acked').map((r) => r.status),
    ['pending', 'pending', 'pending', 'pending'],
  )

  const cli = runCli(t, ['recover', '--json'], { DATABASE_URL: s.db.url, REDIS_URL: s.own.url })
  assert.equal((await cli.exited).code, 0, cli.stderr())
  assert.deepEqual(cli.logs.at(-1), {
    dryRun: false,
    streams: [{ stream: s.stream, checked: 4, missing: 4, resent: 4, ran: true }],
  })
  await startTestRuntime(t, config, { databaseUrl: s.db.url, redisUrl: s.own.url })
  await waitForEntries(s.seenRedis, s.seen, part.length + rest.length, 15_000)
  await new Promise((r) => setTimeout(r, 300))
  assert.deepEqual((await handled(s.seenRedis, s.seen)).sort(), [...part, ...rest].sort())
})
