import assert from 'node:assert/strict'
import path from 'node:path'
import { test, type TestContext } from 'node:test'
import { createPublisher } from '../../src/publish.js'
import { FIXTURES, runCli, writeConfig } from '../support/daemon.js'
import { goesAroundHeld, holdLock, query } from '../support/postgres.js'
import { eventually, readAll, testRedis, waitForEntries } from '../support/redis.js'
import { startTestRuntime } from '../support/runtime.js'
import { migratedStore } from '../support/store.js'

const ok = path.join(FIXTURES, 'ok.mjs')
async function setup(t: TestContext) {
  const { redis, key } = testRedis(t)
  const { db, store } = await migratedStore(t)
  const publisher = createPublisher({ redis, store })
  t.after(() => publisher.close())
  return { redis, key, db, store, publisher, stream: key('orders'), seen: key('seen') }
}

/** The ids of the handled messages, from the `seen` stream the ok.mjs fixture writes. */
async function handledIds(redis: import('ioredis').Redis, seen: string): Promise<Set<string>> {
  return new Set((await readAll(redis, seen)).map(([, f]) => (JSON.parse(f.message!) as { id: string }).id))
}

/** Entries ever added to a stream (0 before it exists): a trimmer may have removed acked ones since. */
async function entriesAdded(redis: import('ioredis').Redis, stream: string): Promise<number> {
  const info = (await redis.xinfo('STREAM', stream).catch(() => null)) as unknown[] | null
  return info ? Number(info[info.indexOf('entries-added') + 1]) : 0
}

/** Publishes a delayed message per id to the test's stream, each recording itself in `seen` once handled. */
function publishDelayed(s: Awaited<ReturnType<typeof setup>>, ids: string[], delayMs: number) {
  return s.publisher.publishMany(
    ids.map((id) => ({ stream: s.stream, id, payload: '{}', fields: { seen: s.seen } })),
    { delayMs },
  )
}

/** When each handled message arrived, by id, from the `seen` stream the ok.mjs fixture writes. */
async function arrivals(redis: import('ioredis').Redis, seen: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const [entryId, f] of await readAll(redis, seen)) {
    out[(JSON.parse(f.message!) as { id: string }).id] = Number(entryId.split('-')[0])
  }
  return out
}

test('a delayed message is delivered once due, not before, and a nearer new delay wakes the scheduler early', async (t) => {
  const s = await setup(t)
  await startTestRuntime(
    t,
    {
      delay: { maxIdleMs: 20_000 },
      consumers: [{ name: 'orders', stream: s.stream, group: 'g', handler: ok }],
    },
    { databaseUrl: s.db.url },
  )
  const far = await s.publisher.publish(
    { stream: s.stream, id: 'far', payload: '{}', fields: { seen: s.seen } },
    { delayMs: 4_000 },
  )
  assert.equal(far.entryId, null)
  assert.equal((await readAll(s.redis, s.stream)).length, 0, 'nothing is in the stream before it is due')
  // The scheduler now sleeps until `far` is due; this one must wake it much earlier.
  const publishedAt = Date.now()
  const near = await s.publisher.publish(
    { stream: s.stream, id: 'near', payload: '{}', fields: { seen: s.seen } },
    { delayMs: 300 },
  )
  await waitForEntries(s.redis, s.seen, 1)
  const firstSeen = await arrivals(s.redis, s.seen)
  assert.deepEqual(Object.keys(firstSeen), ['near'])
  const nearDue = Date.parse(near.deliverAt!)
  assert.ok(firstSeen.near! >= nearDue, 'not delivered before it was due')
  assert.ok(
    firstSeen.near! - publishedAt < 1_500,
    `delivered ${firstSeen.near! - publishedAt} ms after publish`,
  )

  await waitForEntries(s.redis, s.seen, 2, 10_000)
  const all = await arrivals(s.redis, s.seen)
  assert.ok(all.far! >= Date.parse(far.deliverAt!))
  const rows = await query<{ message_id: string; status: string }>(
    s.db.url,
    'SELECT message_id, status FROM delay_message ORDER BY message_id',
  )
  assert.deepEqual(rows, [
    { message_id: 'far', status: 'delivered' },
    { message_id: 'near', status: 'delivered' },
  ])
})

test('a past due time delivers now; NaN, negative, absurd or unparseable times are refused', async (t) => {
  const s = await setup(t)
  const sent = await s.publisher.publish(
    { stream: s.stream, id: 'past', payload: '{}' },
    { deliverAt: Date.now() - 60_000 },
  )
  assert.notEqual(sent.entryId, null, 'sent at once, not stored')
  for (const [options, message] of [
    [{ delayMs: Number.NaN }, /delayMs must be a number of ms ≥ 0, got NaN/],
    [{ delayMs: -5 }, /delayMs must be a number of ms ≥ 0, got -5/],
    [{ delayMs: 400 * 24 * 3600 * 1000 }, /more than a year away; check the unit/],
    [{ deliverAt: 'next tuesday' }, /deliverAt is not a time: "next tuesday"/],
    [{ delayMs: 5, deliverAt: Date.now() }, /either delayMs or deliverAt, not both/],
  ] as const) {
    await assert.rejects(s.publisher.publish({ stream: s.stream, payload: '{}' }, options), {
      code: 'ACK_ERR_PUBLISH_INVALID',
      message,
    })
  }
  const noStore = createPublisher({ redis: s.redis })
  await assert.rejects(noStore.publish({ stream: s.stream, payload: '{}' }, { delayMs: 1000 }), {
    code: 'ACK_ERR_PUBLISH_INVALID',
    message: /without the store/,
  })
  assert.deepEqual(await query(s.db.url, 'SELECT message_id FROM delay_message'), [])
})

test('two daemons share due delays: each is delivered exactly once', async (t) => {
  const s = await setup(t)
  const count = 300
  await publishDelayed(
    s,
    Array.from({ length: count }, (_, i) => `d-${i}`),
    800,
  )
  const config = {
    delay: { batchSize: 20 },
    consumers: [{ name: 'orders', stream: s.stream, group: 'g', handler: ok }],
  }
  // The group exists: no start-up recovery diff, which may re-send a released row whose XADD is still
  // on its way (a duplicate deduplication absorbs) and blur what this test counts — the schedulers.
  await s.redis.xgroup('CREATE', s.stream, 'g', '0', 'MKSTREAM')
  await startTestRuntime(t, config, { databaseUrl: s.db.url })
  await startTestRuntime(t, config, { databaseUrl: s.db.url })
  await waitForEntries(s.redis, s.seen, count, 20_000)
  await new Promise((r) => setTimeout(r, 300))
  // Counted with entries-added: a daemon's trimmer may already have removed acked entries.
  assert.equal(await entriesAdded(s.redis, s.stream), count, 'one stream entry per delayed message')
  assert.equal((await handledIds(s.redis, s.seen)).size, count)
  // Released messages are backed up before they are sent, so their consumers' acks confirm them.
  await eventually(
    async () => {
      const [row] = await query<{ acked: string }>(
        s.db.url,
        `SELECT count(*) FILTER (WHERE status = 'acked') AS acked FROM redis_message_backup`,
      )
      return Number(row!.acked) === count
    },
    { what: 'every released message to be confirmed acked' },
  )
})

test('ackstate publish --delay stores the message for later', async (t) => {
  const s = await setup(t)
  const cli = runCli(
    t,
    ['publish', '--stream', s.stream, '--payload', '{}', '--id', 'later', '--delay', '60000'],
    {
      DATABASE_URL: s.db.url,
    },
  )
  assert.equal((await cli.exited).code, 0, cli.stderr())
  assert.equal(cli.logs.at(-1)!.entryId, null)
  assert.deepEqual(await query(s.db.url, 'SELECT message_id, status FROM delay_message'), [
    { message_id: 'later', status: 'pending' },
  ])
  const bad = runCli(t, ['publish', '--stream', s.stream, '--payload', '{}', '--delay', 'soon'], {
    DATABASE_URL: s.db.url,
  })
  assert.equal((await bad.exited).code, 1)
  assert.match(bad.stderr(), /ACK_ERR_USAGE: --delay "soon" must be a number of ms/)
})

test('kill -9 between a release XADD and its commit: the rows stay pending, the next daemon sends them again, each is handled', async (t) => {
  const s = await setup(t)
  const count = 5
  const ids = Array.from({ length: count }, (_, i) => `d-${i}`)
  await publishDelayed(s, ids, 300)
  // SHARE on the table lets the release lock its rows (ROW SHARE) but holds its UPDATE marking them
  // delivered (ROW EXCLUSIVE): the daemon stops between its XADD and its commit.
  const lock = await holdLock(s.db.url, 'LOCK TABLE delay_message IN SHARE MODE')
  const config = writeConfig(t, {
    consumers: [{ name: 'orders', stream: s.stream, group: 'g', handler: ok }],
  })
  // The group exists: no start-up recovery diff, which would send the released rows' backups itself.
  await s.redis.xgroup('CREATE', s.stream, 'g', '0', 'MKSTREAM')
  const env = { DATABASE_URL: s.db.url }
  const first = runCli(t, ['start', '--config', config], env)
  const added = () => entriesAdded(s.redis, s.stream)
  await eventually(async () => (await added()) === count, { what: 'the first release XADD' })
  const pending = async () =>
    (
      await query<{ n: string }>(s.db.url, "SELECT count(*) AS n FROM delay_message WHERE status = 'pending'")
    )[0]!.n
  assert.equal(await pending(), String(count), 'not committed: the release waits on the lock')
  first.child.kill('SIGKILL')
  await first.exited
  await lock.release()

  runCli(t, ['start', '--config', config], env)
  await eventually(async () => (await pending()) === '0', {
    timeoutMs: 15_000,
    what: 'the second daemon to release the rows again and commit',
  })
  assert.equal(await added(), 2 * count, 'each message was sent twice: once per release')
  await eventually(
    async () => {
      const handled = await handledIds(s.redis, s.seen)
      return ids.every((id) => handled.has(id))
    },
    { what: 'every delayed message handled' },
  )
})

test('a due row another transaction holds is skipped, not waited for: the rest are released meanwhile (SKIP LOCKED)', async (t) => {
  const s = await setup(t)
  const ids = Array.from({ length: 5 }, (_, i) => `d-${i}`)
  await publishDelayed(s, ids, 200)
  // Another daemon's release in progress, as far as this one can tell: d-0's row is locked.
  const other = await holdLock(s.db.url, "SELECT 1 FROM delay_message WHERE message_id = 'd-0' FOR UPDATE")
  await s.redis.xgroup('CREATE', s.stream, 'g', '0', 'MKSTREAM')
  await startTestRuntime(
    t,
    { consumers: [{ name: 'orders', stream: s.stream, group: 'g', handler: ok }] },
    { databaseUrl: s.db.url },
  )
  await goesAroundHeld(() => handledIds(s.redis, s.seen), ids, 'd-0', other)
})
