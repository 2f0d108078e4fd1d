import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Outcome } from '../../machines/types.js'
import { bucketWidthMs, buckets, claimIds, readMark, settleBatch } from '../../src/redis/dedupe.js'
import { testRedis } from '../support/redis.js'

// A bucket is 5 s wide; times are set ahead of the real clock, since Redis expires buckets by its own.
const rules = { ttlMs: 10_000, claimMs: 4_000 }
const WIDTH = bucketWidthMs(rules)
const base = (Math.ceil(Date.now() / WIDTH) + 100) * WIDTH

const ok = (id: string, entryId: string): Outcome => ({ id, entryId, status: 'ok', durationMs: 1 })
const dead = (id: string, entryId: string): Outcome => ({
  id,
  entryId,
  status: 'dead',
  durationMs: 1,
  attempt: 1,
  error: { name: 'PermanentError', code: 'ACK_ERR_PERMANENT', message: 'no' },
})

function setUp(t: Parameters<typeof testRedis>[0]) {
  const { redis, key } = testRedis(t)
  return { redis, target: { stream: key('orders'), group: 'g' } }
}

test('bucket width is half the longest a mark must be found, in whole seconds', () => {
  assert.equal(WIDTH, 5_000)
  assert.equal(bucketWidthMs({ ttlMs: 3_600_000, claimMs: 90_000 }), 1_800_000)
  assert.equal(bucketWidthMs({ ttlMs: 1, claimMs: 61_000 }), 31_000, 'a claim outliving the ttl sets it')
  assert.equal(bucketWidthMs({ ttlMs: 1, claimMs: 1 }), 1_000)
})

test('a claim runs an id once: taken back by the same entry, refused to another until it lapses', async (t) => {
  const { redis, target } = setUp(t)
  const at = base + 100
  assert.deepEqual(
    await claimIds(
      redis,
      target,
      [
        { id: 'a', entryId: '1-1' },
        { id: 'a', entryId: '1-2' },
        { id: 'b', entryId: '1-3' },
      ],
      rules,
      at,
    ),
    ['run', 'in-progress', 'run'],
    'the same id twice in one batch runs once',
  )
  // Re-delivered after a failure, the same entry takes its claim back (renewing it); another waits.
  assert.deepEqual(await claimIds(redis, target, [{ id: 'a', entryId: '1-1' }], rules, at + 1_000), ['run'])
  assert.deepEqual(await claimIds(redis, target, [{ id: 'a', entryId: '2-1' }], rules, at + 1_000), [
    'in-progress',
  ])
  assert.deepEqual(await readMark(redis, target, 'a', rules, at + 1_000), {
    entryId: '1-1',
    lapsesAt: at + 1_000 + rules.claimMs,
  })
  // Its claimer gone, the claim lapses: another entry takes the id.
  const lapsed = at + 1_000 + rules.claimMs
  assert.deepEqual(await claimIds(redis, target, [{ id: 'a', entryId: '2-1' }], rules, lapsed - 1), [
    'in-progress',
  ])
  assert.deepEqual(await claimIds(redis, target, [{ id: 'a', entryId: '2-1' }], rules, lapsed), ['run'])
})

test('a settled id is done for at least dedupeTtlMs, across buckets; a dead-lettered one is released', async (t) => {
  const { redis, target } = setUp(t)
  await redis.xgroup('CREATE', target.stream, target.group, '$', 'MKSTREAM')
  // Marked just before a bucket ends, so the window spans three buckets.
  const marked = base + WIDTH - 1
  await claimIds(
    redis,
    target,
    [
      { id: 'b', entryId: '1-1' },
      { id: 'c', entryId: '1-2' },
    ],
    rules,
    marked,
  )
  await settleBatch(redis, target, [ok('b', '1-1'), dead('c', '1-2')], rules, marked)
  assert.equal(await readMark(redis, target, 'b', rules, marked), 'done')
  assert.equal(await readMark(redis, target, 'c', rules, marked), null, 'the dead letter released its claim')
  assert.deepEqual(await claimIds(redis, target, [{ id: 'c', entryId: '2-2' }], rules, marked + 1), ['run'])
  for (const later of [1, WIDTH, 2 * WIDTH, rules.ttlMs]) {
    assert.deepEqual(
      await claimIds(redis, target, [{ id: 'b', entryId: `3-${later}` }], rules, marked + later),
      ['done'],
      `still done ${later} ms later`,
    )
  }
  // Past the window the bucket is no longer read, and Redis drops it soon after.
  const bucket = buckets(target, rules, marked)
  assert.deepEqual(
    await claimIds(redis, target, [{ id: 'b', entryId: '4-1' }], rules, marked + 3 * WIDTH + 1),
    ['run'],
  )
  assert.equal(await redis.call('PEXPIRETIME', bucket.keys[1]!), bucket.expireAt)
  assert.ok(bucket.expireAt - marked >= rules.ttlMs && bucket.expireAt - marked <= 1.5 * rules.ttlMs + 60_000)
})

test('a mark made by a daemon whose clock runs a bucket ahead is found', async (t) => {
  const { redis, target } = setUp(t)
  await redis.xgroup('CREATE', target.stream, target.group, '$', 'MKSTREAM')
  const behind = base + 10
  await settleBatch(redis, target, [ok('d', '1-1')], rules, behind + WIDTH)
  assert.deepEqual(await claimIds(redis, target, [{ id: 'd', entryId: '2-1' }], rules, behind), ['done'])
})

test('a batch larger than a script chunk (2,500 ids) is claimed, marked and acked whole', async (t) => {
  const { redis, target } = setUp(t)
  await redis.xgroup('CREATE', target.stream, target.group, '$', 'MKSTREAM')
  const pipeline = redis.pipeline()
  for (let i = 0; i < 2_500; i++) pipeline.xadd(target.stream, '*', 'id', `m${i}`, 'payload', '{}')
  await pipeline.exec()
  const read = (await redis.xreadgroup(
    'GROUP',
    target.group,
    'c',
    'COUNT',
    2_500,
    'STREAMS',
    target.stream,
    '>',
  )) as [string, [string, string[]][]][]
  const entries = read[0]![1].map(([entryId, fields]) => ({ entryId, id: fields[1]! }))
  assert.equal(entries.length, 2_500)
  const at = base + 1
  assert.ok((await claimIds(redis, target, entries, rules, at)).every((c) => c === 'run'))
  assert.equal(
    await settleBatch(
      redis,
      target,
      entries.map((e) => ok(e.id, e.entryId)),
      rules,
      at,
    ),
    2_500,
  )
  assert.equal(await redis.xpending(target.stream, target.group).then((p) => (p as [number])[0]), 0)
  const again = await claimIds(
    redis,
    target,
    entries.map((e) => ({ ...e, entryId: `9-${e.id}` })),
    rules,
    at + 1,
  )
  assert.ok(again.every((c) => c === 'done'))
  assert.equal(await redis.hlen(buckets(target, rules, at).keys[1]!), 2_500)
})

test('the settle unlinks the bucket that left the window, before Redis would expire it', async (t) => {
  const { redis, target } = setUp(t)
  await redis.xgroup('CREATE', target.stream, target.group, '$', 'MKSTREAM')
  const first = base + 1
  await settleBatch(redis, target, [ok('e', '1-1')], rules, first)
  const old = buckets(target, rules, first).keys[1]!
  assert.equal(await redis.exists(old), 1)
  // Two buckets on, the old one is still read (its marks may be within dedupeTtlMs) and kept.
  await settleBatch(redis, target, [ok('f', '2-1')], rules, first + 2 * WIDTH)
  assert.equal(await redis.exists(old), 1)
  assert.equal(await readMark(redis, target, 'e', rules, first + 2 * WIDTH), 'done')
  // Three buckets on, every mark in it is past dedupeTtlMs: the settle unlinks it.
  assert.equal(buckets(target, rules, first + 3 * WIDTH).aged, old)
  await settleBatch(redis, target, [ok('g', '3-1')], rules, first + 3 * WIDTH)
  assert.equal(await redis.exists(old), 0)
})
