import assert from 'node:assert/strict'
import path from 'node:path'
import { test } from 'node:test'
import { Redis } from 'ioredis'
import { createLogger } from '../../src/log.js'
import { createPublisher } from '../../src/publish.js'
import { FIXTURES } from '../support/daemon.js'
import { query } from '../support/postgres.js'
import { eventually } from '../support/redis.js'
import { ownRedis } from '../support/redisServer.js'
import { startTestRuntime } from '../support/runtime.js'
import { migratedStore } from '../support/store.js'

const statuses = async (url: string) =>
  Object.fromEntries(
    (
      await query<{ message_id: string; status: string }>(
        url,
        'SELECT message_id, status FROM redis_message_backup ORDER BY message_id',
      )
    ).map((r) => [r.message_id, r.status]),
  )

/**
 * What a failover loses is the tail of a stream whose group survived: no NOGROUP tells. A restart from
 * an older snapshot is the same loss made deterministic: entries written after the SAVE are gone,
 * the group (in the snapshot) is not. The consumer is busy with a slow message meanwhile, so the lost
 * entries were never read; only the failover watch (a new run_id behind the stream) can bring them back.
 */
test('a restart from an older snapshot: the new run_id triggers a diff and the lost tail is re-sent and handled', async (t) => {
  const own = await ownRedis(t)
  const { db, store } = await migratedStore(t)
  const publisher = createPublisher({ redisUrl: own.url, store, logger: createLogger('silent') })
  t.after(() => publisher.close())
  const { logs } = await startTestRuntime(
    t,
    {
      reclaim: { intervalMs: 250, heartbeatTtlMs: 1_000 },
      consumers: [
        {
          name: 'orders',
          stream: 'orders',
          group: 'g',
          handler: path.join(FIXTURES, 'slow.mjs'),
          batchSize: 1,
          blockMs: 200,
        },
      ],
    },
    { databaseUrl: db.url, redisUrl: own.url },
  )
  await publisher.publish({ stream: 'orders', id: 'a-slow', payload: '{}', fields: { ms: '2500' } })
  await eventually(() => logs.some((l) => l.actor === 'consumer-orders' && l.to === 'processing'))
  const admin = new Redis(own.url)
  await admin.save()
  admin.disconnect()
  await publisher.publishMany(
    ['b-1', 'b-2', 'b-3'].map((id) => ({ stream: 'orders', id, payload: '{}', fields: { ms: '0' } })),
  )
  // The publishes resolved: Redis took the entries (their rows stay pending while the publisher lives).
  await own.kill()
  await own.start()

  await eventually(async () => Object.values(await statuses(db.url)).every((s) => s === 'acked'), {
    timeoutMs: 15_000,
    what: 'every backup row acked',
  })
  assert.deepEqual(await statuses(db.url), {
    'a-slow': 'acked',
    'b-1': 'acked',
    'b-2': 'acked',
    'b-3': 'acked',
  })
  const resent = logs.find((l) => l.msg === 're-sent the backed-up messages the new redis server lacked')
  assert.equal(resent?.resent, 3)
})
