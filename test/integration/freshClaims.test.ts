import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { Entry } from '../../machines/types.js'
import { bucketWidthMs, dedupeRules, readMark, settleBatch } from '../../src/redis/dedupe.js'
import { decodeReply, type StreamReply } from '../../src/redis/entries.js'
import { FRESH_CLAIM_SHA, freshClaimArgs, readWithClaims } from '../../src/redis/freshClaims.js'
import { Resources } from '../../src/resources.js'
import { readerSetup } from '../support/reader.js'
import { readAll } from '../support/redis.js'

/** The reader of test/support/reader.ts, once its loop has read once and found the stream drained. */
async function caughtUp(t: TestContext, others: Record<string, unknown>[] = []) {
  const setup = await readerSetup(t, {}, others)
  const { redis, res, read, add, rules, target } = setup
  await add('first')
  const first = await read()
  const work = await (res.batchesAhead.take('orders', first)?.work ??
    Promise.reject(new Error('nothing started')))
  // Settled as the acking step does: its id is done.
  await settleBatch(redis, target, work.ran, rules)
  return setup
}

/** The batch's work, started by the read; and whether its claims came with the read. */
async function workOf(res: Resources, entries: Entry[]) {
  const ahead = res.batchesAhead.take('orders', entries)
  assert.ok(ahead, 'the read started the batch')
  return { fresh: ahead.fresh, work: await ahead.work, rejected: [...ahead.rejected.keys()] }
}

test('once the loop has caught up, Redis claims a batch right behind the read that delivers it', async (t) => {
  const { redis, res, read, add, rules, target, seen } = await caughtUp(t)
  await add('o-1')
  await add('o-2')
  const batch = await read()
  const { fresh, work } = await workOf(res, batch)
  assert.equal(fresh, true, 'the claims came with the read')
  assert.deepEqual(
    work.ran.map((o) => o.id),
    ['o-1', 'o-2'],
  )
  for (const e of batch) {
    const mark = await readMark(redis, target, e.id, rules)
    assert.equal(typeof mark === 'object' && mark?.entryId, e.entryId, `${e.id} is claimed by its entry`)
  }
  assert.equal((await readAll(redis, seen)).length, 3)
})

test('behind the read, a done id is skipped and an id twice in a batch runs once', async (t) => {
  const { res, read, add } = await caughtUp(t)
  await add('first')
  await add('twice')
  await add('twice')
  const batch = await read()
  const { fresh, work } = await workOf(res, batch)
  assert.equal(fresh, true)
  assert.deepEqual(
    work.ran.map((o) => o.entryId),
    [batch[1]!.entryId],
  )
  assert.deepEqual(
    work.skipped.map((o) => [o.entryId, o.status === 'ok' && o.duplicate]),
    [
      [batch[0]!.entryId, 'done'],
      [batch[2]!.entryId, 'in-progress'],
    ],
  )
})

test('entries handed over from a dead daemon and retries are not claimed behind a read', async (t) => {
  const { redis, stream, res, read, add, rules, target } = await caughtUp(t)
  // An entry a dead daemon read, handed over to this one as reclaimOrphans does (IDLE makes it due).
  await add('orphan')
  const reply = await redis.xreadgroup('GROUP', 'g', 'dead', 'COUNT', 1, 'STREAMS', stream, '>')
  const [orphan] = decodeReply(reply as StreamReply)
  await redis.xclaim(stream, 'g', 'c', 0, orphan!.entryId, 'IDLE', 365 * 24 * 3600 * 1000, 'JUSTID')
  await add('o-1')
  const batch = await read()
  assert.deepEqual(
    batch.map((e) => e.id),
    ['o-1'],
  )
  const { fresh } = await workOf(res, batch)
  assert.equal(fresh, true)
  assert.equal(await readMark(redis, target, 'orphan', rules), null, 'the orphan waits for its own claim')
})

test('an entry that cannot be a message is not claimed behind the read; one of the same id runs', async (t) => {
  const { redis, res, read, add, rules, target } = await caughtUp(t)
  await add('same', 'not json')
  await add('same', '{}')
  const batch = await read()
  const { fresh, work, rejected } = await workOf(res, batch)
  assert.equal(fresh, true)
  assert.deepEqual(rejected, [batch[0]!.entryId])
  assert.deepEqual(
    work.ran.map((o) => o.entryId),
    [batch[1]!.entryId],
  )
  const mark = await readMark(redis, target, 'same', rules)
  assert.equal(typeof mark === 'object' && mark?.entryId, batch[1]!.entryId)
})

test('a claim Redis made for an entry the daemon rejects is taken back before the batch is claimed again', async (t) => {
  const { redis, res, read, add, rules, target } = await caughtUp(t)
  // Lua's JSON decoder takes `nan`; JSON.parse does not, so the daemon dead-letters it.
  await add('same', 'nan')
  await add('same', '{}')
  const batch = await read()
  const { fresh, work, rejected } = await workOf(res, batch)
  assert.equal(fresh, false, 'the claims behind the read did not cover the batch')
  assert.deepEqual(rejected, [batch[0]!.entryId])
  assert.deepEqual(
    work.ran.map((o) => o.entryId),
    [batch[1]!.entryId],
    'the entry of the same id runs',
  )
  const mark = await readMark(redis, target, 'same', rules)
  assert.equal(typeof mark === 'object' && mark?.entryId, batch[1]!.entryId)
})

test('after SCRIPT FLUSH the claim behind the read goes once by its text, and then by its SHA1 again', async (t) => {
  const { redis, res, read, add } = await caughtUp(t)
  await redis.script('FLUSH')
  await add('o-1')
  await add('o-2')
  const batch = await read()
  const first = await workOf(res, batch)
  assert.equal(first.fresh, true, 'the text went out and claimed the batch')
  assert.deepEqual(
    first.work.ran.map((o) => o.id),
    ['o-1', 'o-2'],
  )
  const loaded = (await redis.script('EXISTS', FRESH_CLAIM_SHA)) as number[]
  assert.deepEqual(loaded, [1], 'Redis keeps the script for the next reads')
  await add('o-3')
  const next = await read()
  const second = await workOf(res, next)
  assert.equal(second.fresh, true)
  assert.deepEqual(
    second.work.ran.map((o) => o.id),
    ['o-3'],
  )
})

test('a consumer sharing its stream and group with another loop of the daemon claims the usual way', async (t) => {
  const { res, read, add } = await caughtUp(t, [{ name: 'audit', payloadFormat: 'json' }])
  await add('o-1')
  const batch = await read()
  const { fresh, work } = await workOf(res, batch)
  assert.equal(fresh, false)
  assert.deepEqual(
    work.ran.map((o) => o.id),
    ['o-1'],
  )
})

test('the script declines when the Redis clock is not near the buckets it was given', async (t) => {
  const { redis, stream, config, add } = await caughtUp(t)
  await add('o-1')
  const rules = config.consumers[0]!
  const width = bucketWidthMs(dedupeRules(rules))
  const target = { stream, group: 'g', consumer: 'c' }
  const readArgs = ['GROUP', 'g', 'c', 'COUNT', 10, 'STREAMS', stream, '>']
  const far = await readWithClaims(
    redis,
    readArgs,
    freshClaimArgs(target, rules, '0-0', 10, Date.now() + 5 * width),
  )
  assert.equal(far.claims, null)
  assert.equal(far.error, null)
  assert.equal((far.reply as [string, unknown[]][])[0]![1].length, 1, 'the read itself is unharmed')
})
