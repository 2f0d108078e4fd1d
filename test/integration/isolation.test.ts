import assert from 'node:assert/strict'
import path from 'node:path'
import { test, type TestContext } from 'node:test'
import { FIXTURES } from '../support/daemon.js'
import { eventually, pendingCount, readAll, testRedis, waitForEntries } from '../support/redis.js'
import { startTestRuntime } from '../support/runtime.js'

const hostile = path.join(FIXTURES, 'hostile.mjs')

/** One consumer of `stream` on the hostile handler: two attempts, quick retries; `rules` override. */
const consumeHostile = (t: TestContext, stream: string, rules: Record<string, unknown>) =>
  startTestRuntime(t, {
    consumers: [
      {
        name: 'orders',
        stream,
        group: 'g',
        handler: hostile,
        concurrency: 1,
        maxAttempts: 2,
        retryBaseMs: 50,
        retryJitter: 0,
        ...rules,
      },
    ],
  })

/** The dead letters of `stream`: id, attempts and error code. */
const letters = (dead: Record<string, string>[]) =>
  dead.map((d) => ({
    id: d.id,
    attempts: d['dlq.attempts'],
    code: (JSON.parse(d['dlq.error']!) as { code: string }).code,
  }))

for (const [payload, code] of [
  ['loop', 'ACK_ERR_HANDLER_TIMEOUT'],
  ['oom', 'ACK_ERR_HANDLER_CRASHED'],
  ['exit', 'ACK_ERR_HANDLER_CRASHED'],
] as const) {
  test(`a handler that ${payload === 'loop' ? 'never yields' : payload === 'oom' ? 'runs out of memory' : 'exits its thread'} is retried, then dead-lettered, and the daemon keeps consuming`, async (t) => {
    const { redis, key } = testRedis(t)
    const stream = key('orders')
    const seen = key('seen')
    await consumeHostile(t, stream, { batchSize: 1, handlerTimeoutMs: 300, maxMemoryMb: 32 })
    await redis.xadd(stream, '*', 'id', 'bad', 'payload', payload)
    const dead = await waitForEntries(redis, `{${stream}}:dlq`, 1, 20_000)
    assert.deepEqual(letters(dead), [{ id: 'bad', attempts: '2', code }])
    await redis.xadd(stream, '*', 'id', 'good', 'payload', 'fine', 'seen', seen)
    const [handled] = await waitForEntries(redis, seen, 1, 10_000)
    assert.equal(handled!.handled, 'good')
    await eventually(async () => (await pendingCount(redis, stream, 'g')) === 0, { what: 'everything acked' })
  })
}

for (const [label, rules] of [
  ['', {}],
  // The watchdog of a re-run starts when a thread takes the task, not while a new one loads the module.
  [' (a module slow to import)', { handler: path.join(FIXTURES, 'slowImport.mjs'), handlerTimeoutMs: 300 }],
] as const) {
  test(`a thread killed by one message charges only that message: the healthy ones of its chunk complete on their first attempt${label}`, async (t) => {
    const { redis, key } = testRedis(t)
    const stream = key('orders')
    const seen = key('seen')
    // One thread: the whole batch is one chunk, so the poison message shares it with every other.
    await consumeHostile(t, stream, { batchSize: 10, ...rules })
    // Written in one round trip so that the first read takes them as one batch.
    const healthy = ['h1', 'h2', 'h3', 'h4', 'h5']
    const pipeline = redis.pipeline()
    for (const id of healthy.slice(0, 2))
      pipeline.xadd(stream, '*', 'id', id, 'payload', 'fine', 'seen', seen)
    pipeline.xadd(stream, '*', 'id', 'poison', 'payload', 'exit')
    for (const id of healthy.slice(2)) pipeline.xadd(stream, '*', 'id', id, 'payload', 'fine', 'seen', seen)
    await pipeline.exec()

    const dead = await waitForEntries(redis, `{${stream}}:dlq`, 1, 20_000)
    await eventually(async () => (await pendingCount(redis, stream, 'g')) === 0, { what: 'everything acked' })
    assert.deepEqual(letters(dead), [{ id: 'poison', attempts: '2', code: 'ACK_ERR_HANDLER_CRASHED' }])
    // Every run of a healthy message (a run cut short by the crash may have recorded too) was a first
    // attempt, and each of them completed.
    const runs = (await readAll(redis, seen)).map(([, f]) => f)
    assert.deepEqual([...new Set(runs.map((r) => r.handled))].sort(), healthy)
    assert.deepEqual(
      runs.filter((r) => r.attempt !== '1'),
      [],
    )
  })
}
