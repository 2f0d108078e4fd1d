import assert from 'node:assert/strict'
import { test } from 'node:test'
import { BatchesAhead, FRESH_BATCH_MAX } from '../../src/actors/batchAhead.js'
import { readMark } from '../../src/redis/dedupe.js'
import { decodeReply, type StreamReply } from '../../src/redis/entries.js'
import { entry } from '../support/machine.js'
import { readerSetup } from '../support/reader.js'
import { readAll } from '../support/redis.js'

test('a batch is claimed and started in the pool as it is read, before the machine steps to processing', async (t) => {
  const { redis, stream, seen, res, read, rules, target } = await readerSetup(t)
  await redis.xadd(stream, '*', 'id', 'o-1', 'payload', '{}', 'seen', seen)
  await redis.xadd(stream, '*', 'id', 'o-2', 'payload', 'not json', 'seen', seen)

  const entries = await read()
  assert.deepEqual(
    entries.map((e) => e.id),
    ['o-1', 'o-2'],
  )
  const ahead = res.batchesAhead.take('orders', entries)
  assert.ok(ahead, 'the read started the batch')
  const mark = await readMark(redis, target, 'o-1', rules)
  assert.equal(typeof mark === 'object' && mark?.entryId, entries[0]!.entryId, 'o-1 is claimed by its entry')
  assert.equal(
    await readMark(redis, target, 'o-2', rules),
    null,
    'an entry that cannot be a message is not claimed',
  )
  assert.deepEqual([...ahead.rejected.keys()], [entries[1]!.entryId])
  const work = await ahead.work
  assert.deepEqual(
    work.ran.map((o) => [o.id, o.status]),
    [['o-1', 'ok']],
    'the handler ran o-1 without a processing step',
  )
  assert.deepEqual(work.skipped, [])
  assert.equal((await readAll(redis, seen)).length, 1)
})

test('work started ahead serves only the batch it was made for, and only once', async (t) => {
  const { redis, stream, seen, res, read } = await readerSetup(t, { dedupeTtlMs: 0 })
  await redis.xadd(stream, '*', 'id', 'o-1', 'payload', '{}', 'seen', seen)
  const entries = await read()
  assert.equal(res.batchesAhead.take('orders', [...entries]), null, 'another array is another batch')
  await redis.xadd(stream, '*', 'id', 'o-2', 'payload', '{}', 'seen', seen)
  const next = await read()
  assert.equal(res.batchesAhead.take('other', next), null, 'another consumer has none')
  const ahead = res.batchesAhead.take('orders', next)
  assert.deepEqual(
    (await ahead?.work)?.ran.map((o) => o.id),
    ['o-2'],
  )
  assert.equal(res.batchesAhead.take('orders', next), null, 'taken once')
})

test('a read stopped before its claim answered starts nothing', async (t) => {
  const { redis, stream, seen, res, input } = await readerSetup(t)
  await redis.xadd(stream, '*', 'id', 'o-1', 'payload', '{}', 'seen', seen)
  const controller = new AbortController()
  const reply = await redis.xreadgroup('GROUP', 'g', 'c', 'COUNT', 10, 'STREAMS', stream, '>')
  const batch = decodeReply(reply as StreamReply)
  const started = res.batchesAhead.start(res, { ...input, entries: batch }, null, controller.signal)
  // Stopped while its claim is on the way: the answer finds the read step gone.
  controller.abort()
  await started
  const ahead = res.batchesAhead.take('orders', batch)
  await assert.rejects(ahead!.work, /abort/i)
  assert.equal((await readAll(redis, seen)).length, 0, 'the handler never ran')
})

test('a read loop may have Redis claim behind its next read only after a short, small read', () => {
  const ahead = new BatchesAhead()
  assert.equal(ahead.freshCursor('orders'), null, 'a new loop has no cursor')
  ahead.read('orders', [], 10)
  assert.equal(ahead.freshCursor('orders'), null, 'an empty first read gives none')
  ahead.read(
    'orders',
    Array.from({ length: 10 }, (_, i) => entry(`${i + 1}-0`)),
    10,
  )
  assert.equal(ahead.freshCursor('orders'), null, 'a full read: a backlog, claimed the usual way')
  ahead.read('orders', [entry('11-0'), entry('12-0')], 10)
  assert.equal(ahead.freshCursor('orders'), '12-0', 'a short read: caught up, after its last entry')
  ahead.read('orders', [], 10)
  assert.equal(ahead.freshCursor('orders'), '12-0', 'an empty read keeps the cursor')
  const large = Array.from({ length: FRESH_BATCH_MAX + 1 }, (_, i) => entry(`${i + 13}-0`))
  ahead.read('orders', large, 100)
  assert.equal(ahead.freshCursor('orders'), null, 'a short read but a large batch: the usual claim')
  assert.equal(ahead.freshCursor('other'), null, 'each loop has its own')
})
