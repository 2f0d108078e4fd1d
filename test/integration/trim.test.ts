import assert from 'node:assert/strict'
import path from 'node:path'
import { test } from 'node:test'
import { trimStream } from '../../src/redis/trim.js'
import { FIXTURES } from '../support/daemon.js'
import { eventually, groupInfo, testRedis } from '../support/redis.js'
import { startTestRuntime } from '../support/runtime.js'

test('trimming removes what every group acked and never an entry a slow group has not', async (t) => {
  const { redis, key } = testRedis(t)
  const shared = key('shared') // read by a fast group and by a slow one stuck on its first batch
  const solo = key('solo') // read by a fast group alone
  const fast = (name: string, stream: string) => ({
    name,
    stream,
    group: 'fast',
    handler: path.join(FIXTURES, 'ok.mjs'),
  })
  const { logs } = await startTestRuntime(t, {
    trim: { intervalMs: 100 },
    shutdown: { timeoutMs: 1000 }, // the slow handler never finishes: do not wait for it
    reclaim: { intervalMs: 100, heartbeatTtlMs: 1_000 },
    consumers: [
      fast('fast-shared', shared),
      fast('fast-solo', solo),
      {
        name: 'slow',
        stream: shared,
        group: 'slow',
        handler: path.join(FIXTURES, 'slow.mjs'),
        batchSize: 5,
        concurrency: 1,
      },
    ],
  })
  // The groups appear once the consumers started.
  const lag = async (stream: string) => (await groupInfo(redis, stream, 'fast').catch(() => null))?.lag
  for (const stream of [shared, solo]) {
    const pipeline = redis.pipeline()
    for (let i = 0; i < 2000; i++) pipeline.xadd(stream, '*', 'payload', '{}', 'ms', '60000')
    await pipeline.exec()
  }
  await eventually(async () => (await lag(shared)) === 0 && (await lag(solo)) === 0, {
    what: 'the fast groups to consume everything',
  })
  await eventually(async () => (await redis.xlen(solo)) < 2000, {
    what: 'the stream read by fast groups only to be trimmed',
  })
  // Several trim passes later, the stream the slow group still reads is whole.
  await new Promise((r) => setTimeout(r, 500))
  assert.equal(await redis.xlen(shared), 2000)
  const slow = await groupInfo(redis, shared, 'slow')
  assert.deepEqual({ pending: slow.pending, lag: slow.lag }, { pending: 5, lag: 1995 })
  assert.equal(
    logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('stream over trim.maxLength')).length,
    0,
  )
})

test('a trim without trim.maxLength keeps every unconsumed entry; trim.maxLength cuts past it and counts the cut', async (t) => {
  const { redis, key } = testRedis(t)
  const stream = key('orders')
  const pipeline = redis.pipeline()
  for (let i = 0; i < 1000; i++) pipeline.xadd(stream, '*', 'payload', `${i}`)
  await pipeline.exec()
  const ids = (await redis.xrange(stream, '-', '+')).map(([id]) => id)
  await redis.xgroup('CREATE', stream, 'g', '0')
  await redis.xreadgroup('GROUP', 'g', 'c', 'COUNT', 300, 'STREAMS', stream, '>')
  await redis.xack(stream, 'g', ...ids.slice(0, 300))

  const safe = await trimStream(redis, stream, 0)
  assert.equal(safe.overLimit, 0)
  assert.ok(safe.trimmed <= 300, `trimmed ${safe.trimmed}: only acked entries may go`)
  const kept = (await redis.xrange(stream, '-', '+')).map(([id]) => id)
  assert.deepEqual(kept.slice(-700), ids.slice(300), 'every unconsumed entry is still there')
  assert.equal(safe.length, kept.length)

  // The safety valve, when set, is the one trim that may cut what no group consumed yet.
  const valve = await trimStream(redis, stream, 500)
  assert.equal(valve.length, 500)
  assert.equal(valve.overLimit, kept.length - 500)
  assert.deepEqual(
    (await redis.xrange(stream, '-', '+')).map(([id]) => id),
    ids.slice(500),
    'the oldest entries went, the newest 500 stay',
  )

  // A stream no group reads is left alone: nothing says what was consumed.
  const loose = key('loose')
  await redis.xadd(loose, '*', 'payload', '{}')
  assert.deepEqual(await trimStream(redis, loose, 0), { trimmed: 0, overLimit: 0, length: 1 })
})
