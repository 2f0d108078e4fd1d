import assert from 'node:assert/strict'
import path from 'node:path'
import { test, type TestContext } from 'node:test'
import { createPublisher } from '../../src/publish.js'
import { FIXTURES } from '../support/daemon.js'
import { eventually, groupInfo, pendingCount, readAll, testRedis, waitForEntries } from '../support/redis.js'
import { startTestRuntime } from '../support/runtime.js'

const handler = (name: string) => path.join(FIXTURES, name)

test('an entry written by a raw XADD is handled and acked; the handler sees id, payload, headers and extra fields', async (t) => {
  const { redis, key } = testRedis(t)
  const stream = key('orders')
  const seen = key('seen')
  await startTestRuntime(t, {
    consumers: [{ name: 'orders', stream, group: 'billing', handler: handler('ok.mjs') }],
  })
  const entryId = (await redis.xadd(stream, '*', 'payload', '{"total":42}', 'seen', seen, 'source', 'cli'))!

  const [fields] = await waitForEntries(redis, seen)
  const message = JSON.parse(fields!.message!) as Record<string, unknown>
  assert.deepEqual(message, {
    id: entryId,
    entryId,
    stream,
    payload: '{"total":42}',
    headers: {},
    fields: { seen, source: 'cli' },
    attempt: 1,
  })
  await eventually(async () => (await pendingCount(redis, stream, 'billing')) === 0, { what: 'the XACK' })
  const info = await groupInfo(redis, stream, 'billing')
  assert.deepEqual(
    { pending: info.pending, lastDelivered: info['last-delivered-id'] },
    { pending: 0, lastDelivered: entryId },
  )
})

test('a message published through the API reaches the handler with its id and headers', async (t) => {
  const { redis, key } = testRedis(t)
  const stream = key('orders')
  const seen = key('seen')
  await startTestRuntime(t, { consumers: [{ name: 'orders', stream, handler: handler('ok.mjs') }] })
  const publisher = createPublisher({ redis })
  const result = await publisher.publish({
    stream,
    id: 'o-1',
    payload: { total: 42 },
    headers: { 'content-type': 'application/json' },
    fields: { seen },
  })
  assert.equal(result.id, 'o-1')
  const [fields] = await waitForEntries(redis, seen)
  const message = JSON.parse(fields!.message!) as {
    id: string
    entryId: string
    payload: string
    headers: Record<string, string>
  }
  assert.deepEqual(
    {
      id: message.id,
      entryId: message.entryId,
      payload: message.payload,
      contentType: message.headers['content-type'],
    },
    { id: 'o-1', entryId: result.entryId, payload: '{"total":42}', contentType: 'application/json' },
  )
  assert.match(message.headers['published-at']!, /^\d{4}-\d\d-\d\dT/)
})

test('a handler that throws leaves its entry unacked in the PEL, and the consumer goes on', async (t) => {
  const { redis, key } = testRedis(t)
  const stream = key('orders')
  const { logs } = await startTestRuntime(t, {
    consumers: [{ name: 'orders', stream, group: 'g', handler: handler('throws.mjs') }],
  })
  const first = (await redis.xadd(stream, '*', 'payload', '1'))!
  const second = (await redis.xadd(stream, '*', 'payload', '2'))!
  await eventually(() => logs.filter((l) => l.msg === 'handler failed; retrying').length === 2, {
    what: 'two failures',
  })
  const pending = (await redis.xpending(stream, 'g', '-', '+', 10)) as [string, string, number, number][]
  assert.deepEqual(
    pending.map(([id]) => id),
    [first, second],
  )
  const failure = logs.find((l) => l.msg === 'handler failed; retrying')!
  assert.deepEqual(
    { entryId: failure.entryId, attempt: failure.attempt, err: failure.err },
    {
      entryId: first,
      attempt: 1,
      err: {
        type: 'Error',
        name: 'Error',
        code: 'E_PAYMENT',
        message: 'payment service refused',
        stack: (failure.err as { stack: string }).stack,
      },
    },
  )
})

test('no XACK happens while a slow handler is still running', async (t) => {
  const { redis, key } = testRedis(t)
  const stream = key('orders')
  const seen = key('seen')
  await startTestRuntime(t, {
    consumers: [{ name: 'orders', stream, group: 'g', handler: handler('slow.mjs') }],
  })
  const entryId = (await redis.xadd(stream, '*', 'payload', '{}', 'seen', seen, 'ms', '1500'))!
  await eventually(async () => (await readAll(redis, seen)).some(([, f]) => f.started === entryId), {
    what: 'start',
  })
  // Mid-flight: the handler has started and not finished, so the entry must still be pending.
  for (let i = 0; i < 5; i++) {
    const rows = await readAll(redis, seen)
    if (rows.some(([, f]) => f.finished === entryId)) break
    assert.equal(await pendingCount(redis, stream, 'g'), 1)
    await new Promise((r) => setTimeout(r, 200))
  }
  await eventually(async () => (await pendingCount(redis, stream, 'g')) === 0, { what: 'the XACK' })
  const rows = await readAll(redis, seen)
  assert.deepEqual(
    rows.map(([, f]) => Object.keys(f)[0]),
    ['started', 'finished'],
  )
})

test('a PermanentError goes to the dead-letter stream with its error, and is acked', async (t) => {
  const { redis, key } = testRedis(t)
  const stream = key('orders')
  await startTestRuntime(t, {
    consumers: [{ name: 'orders', stream, group: 'g', handler: handler('permanent.mjs') }],
  })
  const entryId = (await redis.xadd(stream, '*', 'id', 'o-9', 'payload', '{"bad":true}', 'source', 'api'))!
  const dlq = `{${stream}}:dlq`
  const [fields] = await waitForEntries(redis, dlq)
  assert.deepEqual(
    { ...fields!, 'dlq.failedAt': undefined, 'dlq.consumer': undefined },
    {
      id: 'o-9',
      payload: '{"bad":true}',
      source: 'api',
      'dlq.error': JSON.stringify({
        name: 'PermanentError',
        code: 'ACK_ERR_PERMANENT',
        message: 'order is malformed',
      }),
      'dlq.attempts': '1',
      'dlq.stream': stream,
      'dlq.group': 'g',
      'dlq.entryId': entryId,
      'dlq.failedAt': undefined,
      'dlq.consumer': undefined,
    },
  )
  await eventually(async () => (await pendingCount(redis, stream, 'g')) === 0, { what: 'the XACK' })
})

test('a handler that outlives handlerTimeoutMs fails with ACK_ERR_HANDLER_TIMEOUT and stays pending', async (t) => {
  const { redis, key } = testRedis(t)
  const stream = key('orders')
  const { logs } = await startTestRuntime(t, {
    consumers: [{ name: 'orders', stream, group: 'g', handler: handler('slow.mjs'), handlerTimeoutMs: 200 }],
  })
  const entryId = (await redis.xadd(stream, '*', 'payload', '{}', 'ms', '3000'))!
  const failure = await eventually(() => logs.find((l) => l.msg === 'handler failed; retrying'), {
    what: 'the timeout',
  })
  assert.deepEqual(
    { entryId: failure.entryId, code: (failure.err as { code: string }).code },
    { entryId, code: 'ACK_ERR_HANDLER_TIMEOUT' },
  )
  assert.equal(await pendingCount(redis, stream, 'g'), 1)
})

test('readers: 2 keeps a second batch in flight while the first runs; with 1 the next read waits for the settle', async (t) => {
  for (const readers of [1, 2]) {
    const { redis, key } = testRedis(t)
    const stream = key('orders')
    const seen = key('seen')
    const { runtime } = await startTestRuntime(t, {
      consumers: [
        {
          name: 'orders',
          stream,
          group: 'g',
          handler: handler('slow.mjs'),
          batchSize: 1,
          readers,
          blockMs: 100,
        },
      ],
    })
    for (const n of [1, 2]) await redis.xadd(stream, '*', 'payload', String(n), 'seen', seen, 'ms', '1500')
    const events = (await waitForEntries(redis, seen, 4, 15_000)).map((f) => Object.keys(f)[0])
    if (readers === 1) {
      assert.deepEqual(events, ['started', 'finished', 'started', 'finished'], 'one batch at a time')
    } else {
      assert.deepEqual(events.slice(0, 2), ['started', 'started'], 'both batches in flight at once')
      assert.ok(
        'consumer-orders#2' in runtime.actor.getSnapshot().children,
        'a second consumer actor, orders#2',
      )
    }
    await eventually(async () => (await pendingCount(redis, stream, 'g')) === 0, { what: 'both acked' })
  }
})

test('reading is bounded by the pool: with slow handlers, no more entries are read than a batch holds', async (t) => {
  const { redis, key } = testRedis(t)
  const stream = key('orders')
  const seen = key('seen')
  const batchSize = 3
  await startTestRuntime(t, {
    consumers: [
      {
        name: 'orders',
        stream,
        group: 'g',
        handler: handler('slow.mjs'),
        batchSize,
        concurrency: 1,
        blockMs: 100,
      },
    ],
  })
  const pipeline = redis.pipeline()
  for (let n = 0; n < 12; n++) pipeline.xadd(stream, '*', 'payload', String(n), 'seen', seen, 'ms', '150')
  await pipeline.exec()
  const finished = async () => (await readAll(redis, seen)).filter(([, f]) => f.finished).length
  // The PEL holds what was read and not yet acked: sampled until every entry was handled.
  let most = 0
  const until = Date.now() + 20_000
  while ((await finished()) < 12 && Date.now() < until) {
    most = Math.max(most, await pendingCount(redis, stream, 'g').catch(() => 0))
    await new Promise((r) => setTimeout(r, 10))
  }
  assert.equal(await finished(), 12, 'all handled')
  assert.ok(most > 0, 'the sampling saw the batches in flight')
  assert.ok(most <= batchSize, `at most one batch read ahead of its acks: ${most} pending at once`)
})

/**
 * A consumer blocked in XREADGROUP (blockMs 5 s) on a stream of its own; `batches(n)` waits until the
 * handler saw `n` messages and their batches were logged, and returns the logged batch sizes.
 */
async function blockedConsumer(t: TestContext) {
  const { redis, key } = testRedis(t)
  const stream = key('orders')
  const seen = key('seen')
  const { logs } = await startTestRuntime(t, {
    consumers: [{ name: 'orders', stream, group: 'g', handler: handler('ok.mjs'), blockMs: 5_000 }],
  })
  // Blocked in XREADGROUP: the group exists and the consumer has asked for entries.
  await eventually(async () => (await redis.exists(stream)) === 1, { what: 'the group' })
  await new Promise((r) => setTimeout(r, 300))
  const batches = async (n: number) => {
    await waitForEntries(redis, seen, n)
    // The handler writes `seen` in the worker; the batch's log line follows when its result is back.
    const sizes = () => logs.filter((l) => l.msg === 'batch processed').map((l) => l.count as number)
    await eventually(() => sizes().reduce((a, b) => a + b, 0) >= n, { what: 'the batches logged' })
    return sizes()
  }
  return { redis, stream, seen, batches }
}

test('a burst XADDed as one pipeline while the consumer is blocked is read as one batch, not its first entry alone', async (t) => {
  const { redis, stream, seen, batches } = await blockedConsumer(t)
  const pipeline = redis.pipeline()
  for (let n = 0; n < 20; n++) pipeline.xadd(stream, '*', 'payload', String(n), 'seen', seen)
  await pipeline.exec()

  // Redis wakes the blocked reader at the first XADD; without the read that follows it, that entry
  // would be a batch of its own and the other 19 would wait a whole turn of the loop.
  assert.deepEqual(await batches(20), [20])
})

test('a publishMany landing while the consumer is blocked is one reply: no read without BLOCK follows it', async (t) => {
  const { redis, stream, seen, batches } = await blockedConsumer(t)
  // Every XREADGROUP on this stream, as Redis receives it.
  const monitor = await redis.monitor()
  t.after(() => monitor.disconnect())
  const reads: string[][] = []
  monitor.on('monitor', (_time: string, args: string[]) => {
    if (args[0]?.toUpperCase() === 'XREADGROUP' && args.includes(stream)) reads.push(args)
  })
  const publisher = createPublisher({ redis })
  await publisher.publishMany(
    Array.from({ length: 20 }, (_, n) => ({ stream, payload: String(n), fields: { seen } })),
  )
  await publisher.close()

  assert.deepEqual(await batches(20), [20], 'one script call, one wake-up, one batch')
  // The reads after the blocked one are the loop's next blocking reads, never a non-blocking top-up.
  const unblocked = reads.filter((args) => !args.map((a) => a.toUpperCase()).includes('BLOCK'))
  assert.deepEqual(unblocked, [], 'no read without BLOCK')
})
