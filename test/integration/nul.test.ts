import assert from 'node:assert/strict'
import path from 'node:path'
import { test } from 'node:test'
import { createPublisher } from '../../src/publish.js'
import { FIXTURES } from '../support/daemon.js'
import { query } from '../support/postgres.js'
import { eventually, pendingCount, readAll, testRedis, waitForEntries } from '../support/redis.js'
import { startTestRuntime } from '../support/runtime.js'
import { migratedStore } from '../support/store.js'

test('a publish whose payload holds a NUL character is refused as bad input, and nothing is sent', async (t) => {
  const { redis, key } = testRedis(t)
  const { db, store } = await migratedStore(t)
  const stream = key('orders')
  const publisher = createPublisher({ redis, store, publisherId: 'p1' })
  t.after(() => publisher.close())
  await assert.rejects(publisher.publish({ stream, id: 'nul-1', payload: 'a\u0000b' }), {
    code: 'ACK_ERR_PUBLISH_INVALID',
    message: /`payload` contains a NUL character \(U\+0000\) at index 1.*PostgreSQL.*base64/,
  })
  assert.deepEqual(await readAll(redis, stream), [])
  assert.deepEqual(await query(db.url, 'SELECT message_id FROM redis_message_backup'), [])
})

test('a dead letter whose payload holds a NUL character is stored base64-encoded, with the rest of its batch', async (t) => {
  const { redis, key } = testRedis(t)
  const { db } = await migratedStore(t)
  const stream = key('orders')
  await startTestRuntime(
    t,
    {
      consumers: [
        { name: 'orders', stream, group: 'g', handler: path.join(FIXTURES, 'permanent.mjs'), batchSize: 10 },
      ],
    },
    { databaseUrl: db.url },
  )
  // Another client writes raw entries; the two die in one batch.
  const pipeline = redis.pipeline()
  pipeline.xadd(stream, '*', 'id', 'plain', 'payload', 'fine')
  pipeline.xadd(stream, '*', 'id', 'nul', 'payload', 'a\u0000b', 'note', 'x\u0000y')
  await pipeline.exec()
  await waitForEntries(redis, `{${stream}}:dlq`, 2)
  await eventually(async () => (await pendingCount(redis, stream, 'g')) === 0, { what: 'the XACKs' })
  type Row = { message_id: string; payload: string; encoding: string | null; note: string | null }
  const rows = await eventually(
    async () => {
      const found = await query<Row>(
        db.url,
        `SELECT message_id, payload, fields->>'dlq.payloadEncoding' AS encoding, fields->>'note' AS note
           FROM dead_letter ORDER BY message_id`,
      )
      return found.length === 2 && found
    },
    { what: 'both dead_letter rows' },
  )
  assert.deepEqual(rows, [
    {
      message_id: 'nul',
      payload: Buffer.from('a\u0000b').toString('base64'),
      encoding: 'base64',
      // Any other column cannot hold the NUL either: U+FFFD (the dead-letter stream keeps the original).
      note: 'x\uFFFDy',
    },
    { message_id: 'plain', payload: 'fine', encoding: null, note: null },
  ])
})
