import assert from 'node:assert/strict'
import path from 'node:path'
import { test } from 'node:test'
import { FIXTURES } from '../support/daemon.js'
import { eventually, pendingCount, testRedis, waitForEntries } from '../support/redis.js'
import { startTestRuntime } from '../support/runtime.js'

const hostile = path.join(FIXTURES, 'hostile.mjs')

for (const [payload, code] of [
  ['loop', 'ACK_ERR_HANDLER_TIMEOUT'],
  ['oom', 'ACK_ERR_HANDLER_CRASHED'],
  ['exit', 'ACK_ERR_HANDLER_CRASHED'],
] as const) {
  test(`a handler that ${payload === 'loop' ? 'never yields' : payload === 'oom' ? 'runs out of memory' : 'exits its thread'} is retried, then dead-lettered, and the daemon keeps consuming`, async (t) => {
    const { redis, key } = testRedis(t)
    const stream = key('orders')
    const seen = key('seen')
    await startTestRuntime(t, {
      consumers: [
        {
          name: 'orders',
          stream,
          group: 'g',
          handler: hostile,
          batchSize: 1,
          concurrency: 1,
          handlerTimeoutMs: 300,
          maxMemoryMb: 32,
          maxAttempts: 2,
          retryBaseMs: 50,
          retryJitter: 0,
        },
      ],
    })
    await redis.xadd(stream, '*', 'id', 'bad', 'payload', payload)
    const [dead] = await waitForEntries(redis, `{${stream}}:dlq`, 1, 20_000)
    assert.deepEqual(
      {
        id: dead!.id,
        attempts: dead!['dlq.attempts'],
        code: (JSON.parse(dead!['dlq.error']!) as { code: string }).code,
      },
      { id: 'bad', attempts: '2', code },
    )
    await redis.xadd(stream, '*', 'id', 'good', 'payload', 'fine', 'seen', seen)
    const [handled] = await waitForEntries(redis, seen, 1, 10_000)
    assert.equal(handled!.handled, 'good')
    await eventually(async () => (await pendingCount(redis, stream, 'g')) === 0, { what: 'everything acked' })
  })
}
