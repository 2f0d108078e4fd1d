import assert from 'node:assert/strict'
import path from 'node:path'
import { test } from 'node:test'
import { createPublisher } from '../../src/publish.js'
import { FIXTURES } from '../support/daemon.js'
import { PG_ADMIN_URL, query } from '../support/postgres.js'
import { eventually, testRedis, waitForEntries } from '../support/redis.js'
import { startTestRuntime } from '../support/runtime.js'
import { migratedStore } from '../support/store.js'

test('PostgreSQL connections killed under load: consumers keep consuming, confirmations are flushed when it is back', async (t) => {
  const { redis, key } = testRedis(t)
  const { db, store } = await migratedStore(t)
  const stream = key('orders')
  const seen = key('seen')
  const { logs } = await startTestRuntime(
    t,
    { consumers: [{ name: 'orders', stream, group: 'g', handler: path.join(FIXTURES, 'ok.mjs') }] },
    { databaseUrl: db.url },
  )
  const publisher = createPublisher({ redis, store })
  t.after(() => publisher.close())
  const publish = (from: number, n: number) =>
    publisher.publishMany(
      Array.from({ length: n }, (_, i) => ({ stream, id: `m-${from + i}`, payload: '{}', fields: { seen } })),
    )

  await publish(0, 50)
  await waitForEntries(redis, seen, 50)
  // Every backend of the daemon's database goes: its pooled connections die under it.
  await query(PG_ADMIN_URL, 'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [
    new URL(db.url).pathname.slice(1),
  ])
  // Messages written straight to Redis keep being consumed meanwhile.
  for (let i = 50; i < 100; i++) await redis.xadd(stream, '*', 'id', `m-${i}`, 'payload', '{}', 'seen', seen)
  await waitForEntries(redis, seen, 100)
  // The publisher's own connections died too: its next publish may fail once, then it works again.
  await eventually(
    async () => {
      try {
        await publish(100, 20)
        return true
      } catch (err) {
        assert.equal((err as { code: string }).code, 'ACK_ERR_STORE_UNAVAILABLE')
        return false
      }
    },
    { what: 'publishing with the backup to work again' },
  )
  await waitForEntries(redis, seen, 120)
  await eventually(
    async () => {
      const [row] = await query<{ acked: string }>(
        db.url,
        `SELECT count(*) FILTER (WHERE status = 'acked') AS acked FROM redis_message_backup`,
      )
      return Number(row!.acked) === 70
    },
    { what: 'every backed-up message to be confirmed acked' },
  )
  assert.ok(!logs.some((l) => l.msg === 'consumer crashed; restarting'), 'no consumer crashed')
})

test('a publish with the backup while PostgreSQL is unreachable rejects with ACK_ERR_STORE_UNAVAILABLE and sends nothing', async (t) => {
  const { redis, key } = testRedis(t)
  const stream = key('orders')
  const publisher = createPublisher({ redis, databaseUrl: 'postgres://postgres@127.0.0.1:1/none' })
  t.after(() => publisher.close())
  await assert.rejects(publisher.publish({ stream, payload: '{}' }), {
    code: 'ACK_ERR_STORE_UNAVAILABLE',
    message: /backup rows could not be written .*nothing was sent/,
  })
  assert.equal(await redis.exists(stream), 0)
})
