import assert from 'node:assert/strict'
import path from 'node:path'
import { test, type TestContext } from 'node:test'
import { createPublisher } from '../../src/publish.js'
import { entryFields } from '../../src/redis/entries.js'
import { heartbeatKey } from '../../src/redis/keys.js'
import { insertBackups } from '../../src/store/backup.js'
import { FIXTURES, runCli } from '../support/daemon.js'
import { goesAroundHeld, holdLock, query } from '../support/postgres.js'
import { eventually, pendingCount, readAll, testRedis, waitForEntries } from '../support/redis.js'
import { startTestRuntime } from '../support/runtime.js'
import { migratedStore } from '../support/store.js'

const ok = path.join(FIXTURES, 'ok.mjs')
type Row = { message_id: string; status: string; publisher_id: string | null; attempts: number }
const rows = (url: string) =>
  query<Row>(
    url,
    'SELECT message_id, status, publisher_id, attempts FROM redis_message_backup ORDER BY message_id',
  )

/** A stream and a `seen` stream of this test's, a migrated test database, and publisher p1 on both. */
async function publishing(t: TestContext) {
  const { redis, key } = testRedis(t)
  const { db, store } = await migratedStore(t)
  const publisher = createPublisher({ redis, store, publisherId: 'p1' })
  t.after(() => publisher.close())
  return { redis, db, store, publisher, stream: key('orders'), seen: key('seen') }
}

test('publish writes one backup row and one entry; the row turns acked once the handler ran', async (t) => {
  const { redis, db, stream, seen, publisher } = await publishing(t)
  const result = await publisher.publish({ stream, id: 'o-1', payload: { total: 1 }, fields: { seen } })

  assert.deepEqual(
    (await readAll(redis, stream)).map(([entryId, f]) => ({ entryId, id: f.id })),
    [{ entryId: result.entryId, id: 'o-1' }],
  )
  const [row] = await rows(db.url)
  assert.deepEqual({ id: row!.message_id, publisher: row!.publisher_id }, { id: 'o-1', publisher: 'p1' })
  assert.ok(['pending', 'sent'].includes(row!.status))

  await startTestRuntime(
    t,
    { consumers: [{ name: 'orders', stream, group: 'g', handler: ok }] },
    { databaseUrl: db.url },
  )
  await waitForEntries(redis, seen, 1)
  await eventually(async () => (await rows(db.url))[0]!.status === 'acked', { what: 'the row to turn acked' })
})

test('the backup row holds exactly what the entry holds, through the COPY; a re-published id resets its row', async (t) => {
  const { redis, key } = testRedis(t)
  const { db, store } = await migratedStore(t)
  const stream = key('orders')
  const publisher = createPublisher({ redis, store, publisherId: 'p1' })
  t.after(() => publisher.close())
  // Every character COPY's text format escapes, plus a literal "\N" (its NULL marker) and non-ASCII.
  const awkward = 'tab\there\nnew line\r\\N back\\slash \\t ünïcødé ✓'
  await publisher.publishMany([
    { stream, id: 'a-1', payload: awkward, headers: { note: awkward }, fields: { extra: awkward } },
    { stream, id: 'a-2', payload: { nested: awkward } },
  ])
  type Stored = { message_id: string; payload: string; headers: string; fields: string }
  const stored = await query<Stored>(
    db.url,
    'SELECT message_id, payload, headers, fields FROM redis_message_backup ORDER BY message_id',
  )
  const entries = await readAll(redis, stream)
  assert.deepEqual(
    stored.map((r) => ({ id: r.message_id, payload: r.payload, headers: r.headers })),
    entries.map(([, f]) => ({ id: f.id, payload: f.payload, headers: f.headers })),
  )
  assert.deepEqual(
    stored.map((r) => JSON.parse(r.fields) as unknown),
    [{ extra: awkward }, {}],
  )

  // A producer retry of a-1 under another publisher: the COPY hits the key, the upsert takes over.
  const retry = createPublisher({ redis, store, publisherId: 'p2' })
  t.after(() => retry.close())
  await retry.publishMany([
    { stream, id: 'a-1', payload: 'second' },
    { stream, id: 'a-3', payload: 'third' },
  ])
  assert.deepEqual(
    (await rows(db.url)).map((r) => [r.message_id, r.publisher_id]),
    [
      ['a-1', 'p2'],
      ['a-2', 'p1'],
      ['a-3', 'p2'],
    ],
  )
  const [again] = await query<Stored>(
    db.url,
    `SELECT payload FROM redis_message_backup WHERE message_id = 'a-1'`,
  )
  assert.equal(again!.payload, 'second')
})

for (const outbox of [false, true])
  test(
    outbox
      ? 'transactional outbox: an XADD after the commit that Redis refuses leaves the row to the republisher, which re-sends it'
      : 'a publish Redis refuses rejects with a coded error, and the republisher re-sends the committed row',
    async (t) => {
      const { redis, key } = testRedis(t)
      const { db, store } = await migratedStore(t)
      const stream = key('orders')
      const seen = key('seen')
      const down = createPublisher({
        redisUrl: 'redis://127.0.0.1:1',
        store,
        publisherId: 'p-down',
        heartbeat: false,
      })
      t.after(() => down.close())
      const message = { stream, id: 'o-2', payload: '{}', fields: { seen } }
      if (outbox) {
        // The caller's transaction commits; the send after it fails, with a warning, not an error of theirs.
        await store.transaction((transaction) => down.publish(message, { transaction }))
        await eventually(async () => (await rows(db.url))[0]?.publisher_id === null, {
          what: 'the failed send to give the row up',
        })
      } else {
        await assert.rejects(down.publish(message), { code: 'ACK_ERR_REDIS_UNAVAILABLE' })
      }
      assert.deepEqual(
        (await rows(db.url)).map((r) => [r.message_id, r.status, r.publisher_id]),
        [['o-2', 'pending', null]],
        'the row is committed and given up to the republisher',
      )
      assert.equal((await readAll(redis, stream)).length, 0)

      await startTestRuntime(
        t,
        {
          republish: { afterMs: 100, intervalMs: 100 },
          consumers: [{ name: 'orders', stream, group: 'g', handler: ok }],
        },
        { databaseUrl: db.url },
      )
      const [handled] = await waitForEntries(redis, seen, 1)
      assert.equal((JSON.parse(handled!.message!) as { id: string }).id, 'o-2')
      await eventually(async () => (await rows(db.url))[0]!.status === 'acked', {
        what: 'the re-sent row to be acked',
      })
    },
  )

test("a row whose publisher died between commit and XADD is re-sent; a live publisher's rows are left alone", async (t) => {
  const { redis, key } = testRedis(t)
  const { db, store } = await migratedStore(t)
  const stream = key('orders')
  const seen = key('seen')
  const row = (id: string) => ({ messageId: id, stream, payload: '{}', headers: {}, fields: { seen } })
  // A live publisher: its heartbeat outlives the test by a few seconds, then expires on its own.
  const alive = `alive-${key('p')}`
  await redis.set(heartbeatKey(alive), '1', 'PX', 10_000)
  await insertBackups(store, [row('dead-1')], 'crashed-publisher')
  await insertBackups(store, [row('live-1')], alive)
  // The group exists: no start-up recovery (which diffs every unacked row, live owner or not), so
  // what reaches the stream is the republisher's doing alone.
  await redis.xgroup('CREATE', stream, 'g', '0', 'MKSTREAM')

  await startTestRuntime(
    t,
    {
      republish: { afterMs: 100, intervalMs: 100 },
      consumers: [{ name: 'orders', stream, group: 'g', handler: ok }],
    },
    { databaseUrl: db.url },
  )
  await waitForEntries(redis, seen, 1)
  await new Promise((r) => setTimeout(r, 500))
  assert.deepEqual(
    (await readAll(redis, seen)).map(([, f]) => (JSON.parse(f.message!) as { id: string }).id),
    ['dead-1'],
  )
  const byId = Object.fromEntries((await rows(db.url)).map((r) => [r.message_id, r.status]))
  assert.deepEqual(byId, { 'dead-1': 'acked', 'live-1': 'pending' })
})

test('a publisher with a heartbeat adds no UPDATE per publish: its rows stay pending while it lives and are marked sent at close', async (t) => {
  const { redis, key } = testRedis(t)
  const { db, store } = await migratedStore(t)
  const stream = key('orders')
  const publisher = createPublisher({ redis, store, publisherId: key('p') })
  await publisher.publishMany(['h-1', 'h-2', 'h-3'].map((id) => ({ stream, id, payload: '{}' })))
  await new Promise((r) => setTimeout(r, 300))
  assert.deepEqual(
    (await rows(db.url)).map((r) => r.status),
    ['pending', 'pending', 'pending'],
  )
  await publisher.close()
  assert.deepEqual(
    (await rows(db.url)).map((r) => r.status),
    ['sent', 'sent', 'sent'],
  )
  assert.equal(await redis.exists(heartbeatKey(key('p'))), 0)
})

test("a gone publisher's rows are looked up in their stream: those present are marked sent, only the absent are re-sent", async (t) => {
  const { redis, key } = testRedis(t)
  const { db, store } = await migratedStore(t)
  const stream = key('orders')
  const row = (id: string) => ({ messageId: id, stream, payload: '{}', headers: {}, fields: {} })
  // Crashed after its XADD (in-stream) and between its commit and its XADD (lost-1).
  await insertBackups(store, [row('in-stream'), row('lost-1')], 'crashed-publisher')
  await redis.xadd(stream, '*', ...entryFields({ id: 'in-stream', payload: '{}', headers: {}, fields: {} }))

  // The daemon consumes another stream: what reaches this one is the republisher's doing alone.
  const { logs } = await startTestRuntime(
    t,
    {
      republish: { afterMs: 100, intervalMs: 100 },
      consumers: [{ name: 'other', stream: key('other'), group: 'g', handler: ok }],
    },
    { databaseUrl: db.url },
  )
  await eventually(async () => (await rows(db.url)).every((r) => r.status === 'sent'), {
    what: 'both rows marked sent',
  })
  assert.deepEqual(
    (await readAll(redis, stream)).map(([, f]) => f.id),
    ['in-stream', 'lost-1'],
  )
  assert.equal(logs.find((l) => l.msg === 're-sent backed-up messages that never reached redis')?.count, 1)
})

test('transactional outbox: a committed transaction sends, a rolled-back one sends nothing', async (t) => {
  const { redis, key } = testRedis(t)
  const { db, store } = await migratedStore(t)
  const stream = key('orders')
  const publisher = createPublisher({ redis, store })
  t.after(() => publisher.close())

  await store.transaction(async (transaction) => {
    const result = await publisher.publish({ stream, id: 'kept', payload: '{}' }, { transaction })
    assert.equal(result.entryId, null)
    assert.equal((await readAll(redis, stream)).length, 0, 'nothing is sent before the commit')
  })
  await eventually(async () => (await readAll(redis, stream)).length === 1, { what: 'the send after commit' })

  await assert.rejects(
    store.transaction(async (transaction) => {
      await publisher.publish({ stream, id: 'dropped', payload: '{}' }, { transaction })
      throw new Error('the business write failed')
    }),
    /the business write failed/,
  )
  await new Promise((r) => setTimeout(r, 200))
  assert.deepEqual(
    (await readAll(redis, stream)).map(([, f]) => f.id),
    ['kept'],
  )
  assert.deepEqual(
    (await rows(db.url)).map((r) => r.message_id),
    ['kept'],
  )
})

test('a failed attempt is recorded on the backup row, and a re-sent message keeps its attempts', async (t) => {
  const { redis, key } = testRedis(t)
  const { db, store } = await migratedStore(t)
  const stream = key('orders')
  const publisher = createPublisher({ redis, store })
  t.after(() => publisher.close())
  await startTestRuntime(
    t,
    {
      consumers: [
        {
          name: 'orders',
          stream,
          group: 'g',
          handler: path.join(FIXTURES, 'throws.mjs'),
          maxAttempts: 3,
          retryBaseMs: 60_000,
        },
      ],
    },
    { databaseUrl: db.url },
  )
  await publisher.publish({ stream, id: 'o-3', payload: '{}' })
  await eventually(async () => (await rows(db.url))[0]?.attempts === 1, { what: 'attempt 1 to be recorded' })
  assert.equal(await pendingCount(redis, stream, 'g'), 1)
})

test('ackstate publish backs the message up when the store is on', async (t) => {
  const { redis, key } = testRedis(t)
  const { db } = await migratedStore(t)
  const stream = key('orders')
  const cli = runCli(t, ['publish', '--stream', stream, '--payload', '{}', '--id', 'cli-1'], {
    DATABASE_URL: db.url,
  })
  assert.equal((await cli.exited).code, 0, cli.stderr())
  assert.deepEqual(
    (await readAll(redis, stream)).map(([, f]) => f.id),
    ['cli-1'],
  )
  const [row] = await rows(db.url)
  assert.deepEqual({ id: row!.message_id, status: row!.status }, { id: 'cli-1', status: 'sent' })
})

test('settled rows past their retention are pruned in batches; recent and unsettled ones stay', async (t) => {
  const { key } = testRedis(t)
  const { db, store } = await migratedStore(t)
  const stream = key('orders')
  const row = (id: string) => ({ messageId: id, stream, payload: '{}', headers: {}, fields: {} })
  await insertBackups(store, ['old-acked', 'old-dead', 'new-acked', 'old-pending'].map(row), 'p')
  await query(
    db.url,
    `UPDATE redis_message_backup SET status = 'acked', acked_at = now() - interval '8 days' WHERE message_id = 'old-acked';
     UPDATE redis_message_backup SET status = 'dead', acked_at = now() - interval '8 days' WHERE message_id = 'old-dead';
     UPDATE redis_message_backup SET status = 'acked', acked_at = now() WHERE message_id = 'new-acked';
     UPDATE redis_message_backup SET created_at = now() - interval '8 days' WHERE message_id = 'old-pending';
     INSERT INTO delay_message (message_id, stream, payload, deliver_at, status, delivered_at)
       VALUES ('old-delay', '${stream}', '{}', now() - interval '8 days', 'delivered', now() - interval '8 days'),
              ('due-later', '${stream}', '{}', now() + interval '1 day', 'pending', NULL);
     INSERT INTO processed_message (stream, group_name, message_id, processed_at)
       VALUES ('${stream}', 'g', 'old-effect', now() - interval '8 days'), ('${stream}', 'g', 'new-effect', now())`,
  )
  await startTestRuntime(
    t,
    {
      retention: { ackedMs: 86_400_000, deliveredMs: 86_400_000, batchSize: 1 },
      consumers: [{ name: 'orders', stream, group: 'g', handler: ok }],
    },
    { databaseUrl: db.url },
  )
  await eventually(async () => (await rows(db.url)).length === 2, {
    what: 'the old settled rows to be pruned',
  })
  assert.deepEqual(
    (await rows(db.url)).map((r) => r.message_id),
    ['new-acked', 'old-pending'],
  )
  // One pass prunes the three tables in turn.
  await eventually(async () => (await query(db.url, 'SELECT 1 FROM processed_message')).length === 1)
  assert.deepEqual(await query(db.url, 'SELECT message_id FROM delay_message'), [{ message_id: 'due-later' }])
  assert.deepEqual(await query(db.url, 'SELECT message_id FROM processed_message'), [
    { message_id: 'new-effect' },
  ])
})

test('the republisher skips an orphaned row another transaction holds and re-sends the rest (SKIP LOCKED)', async (t) => {
  const { redis, key } = testRedis(t)
  const { db, store } = await migratedStore(t)
  const stream = key('orders')
  const ids = Array.from({ length: 5 }, (_, i) => `orphan-${i}`)
  await insertBackups(
    store,
    ids.map((id) => ({ messageId: id, stream, payload: '{}', headers: {}, fields: {} })),
    'gone',
  )
  await store.query('UPDATE redis_message_backup SET publisher_id = NULL')
  // Another daemon's republish pass in progress, as far as this one can tell: orphan-0 is locked.
  const other = await holdLock(
    db.url,
    "SELECT 1 FROM redis_message_backup WHERE message_id = 'orphan-0' FOR UPDATE",
  )
  await startTestRuntime(
    t,
    {
      republish: { afterMs: 100, intervalMs: 50, batchSize: 10 },
      consumers: [{ name: 'other', stream: key('other'), group: 'g', handler: ok }],
    },
    { databaseUrl: db.url },
  )
  const sent = async () => new Set((await readAll(redis, stream)).map(([, f]) => f.id!))
  await goesAroundHeld(sent, ids, 'orphan-0', other)
  assert.equal((await readAll(redis, stream)).length, ids.length, 'one entry per row')
})

test("two daemons share the republisher's work (FOR UPDATE SKIP LOCKED): each orphaned row is re-sent once", async (t) => {
  const { redis, key } = testRedis(t)
  const { db, store } = await migratedStore(t)
  const stream = key('orders')
  const count = 400
  const ids = Array.from({ length: count }, (_, i) => `orphan-${i}`)
  const config = {
    republish: { afterMs: 100, intervalMs: 50, batchSize: 10 },
    consumers: [{ name: 'other', stream: key('other'), group: 'g', handler: ok }],
  }
  const daemons = [
    await startTestRuntime(t, config, { databaseUrl: db.url }),
    await startTestRuntime(t, config, { databaseUrl: db.url }),
  ]
  // Disowned rows (a failed XADD): Redis never had them, so both daemons race to send every one.
  // Written once both run.
  await insertBackups(
    store,
    ids.map((id) => ({ messageId: id, stream, payload: '{}', headers: {}, fields: {} })),
    'gone',
  )
  await store.query('UPDATE redis_message_backup SET publisher_id = NULL')
  await eventually(async () => (await rows(db.url)).every((r) => r.status === 'sent'), {
    timeoutMs: 20_000,
    what: 'every orphaned row re-sent',
  })
  const sent = (await readAll(redis, stream)).map(([, f]) => f.id!)
  assert.equal(sent.length, count, 'one entry per row')
  assert.deepEqual(new Set(sent), new Set(ids))
  const byDaemon = daemons.map(({ logs }) =>
    logs
      .filter((l) => l.msg === 're-sent backed-up messages that never reached redis')
      .reduce((n, l) => n + Number(l.count), 0),
  )
  assert.equal(byDaemon[0]! + byDaemon[1]!, count)
  assert.ok(
    byDaemon.every((n) => n > 0),
    `both daemons took a share: ${byDaemon.join(' + ')}`,
  )
})

test('a duplicate acked while its twin still runs does not confirm the shared backup row; the twin does once it succeeds', async (t) => {
  const { redis, db, stream, seen, publisher } = await publishing(t)
  // The same id twice (a producer's retry): one row, two entries, read in one batch. The first
  // entry claims o-1 and fails its first attempt; the second is acked as a duplicate meanwhile.
  for (let i = 0; i < 2; i++)
    await publisher.publish({ stream, id: 'o-1', payload: {}, fields: { seen, failures: '1' } })
  await startTestRuntime(
    t,
    {
      consumers: [
        {
          name: 'orders',
          stream,
          group: 'g',
          handler: path.join(FIXTURES, 'flaky.mjs'),
          retryBaseMs: 1_000,
          retryJitter: 0,
        },
      ],
    },
    { databaseUrl: db.url },
  )
  // The failed attempt is recorded on the row: the batch has been settled and confirmed.
  await eventually(async () => (await rows(db.url))[0]!.attempts >= 1, { what: 'the failed attempt' })
  await new Promise((r) => setTimeout(r, 200))
  assert.notEqual(
    (await rows(db.url))[0]!.status,
    'acked',
    'not acked while the message waits for its retry: a Redis data loss now must re-send it',
  )
  await eventually(async () => (await rows(db.url))[0]!.status === 'acked', {
    what: 'the row acked once the retry succeeded',
  })
  assert.deepEqual(
    (await readAll(redis, seen)).map(([, f]) => f.attempt),
    ['1', '2'],
  )

  // Published once more after it completed: the row is reset to pending, the entry is a duplicate of
  // a done id, and that confirms the row again without running the handler.
  await publisher.publish({ stream, id: 'o-1', payload: {}, fields: { seen, failures: '1' } })
  await eventually(async () => (await rows(db.url))[0]!.status === 'acked', {
    what: 'the re-published row acked again',
  })
  await eventually(async () => (await pendingCount(redis, stream, 'g')) === 0, { what: 'all acked' })
  assert.equal((await readAll(redis, seen)).length, 2, 'the handler did not run again')
})
