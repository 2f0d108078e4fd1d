import assert from 'node:assert/strict'
import path from 'node:path'
import { test } from 'node:test'
import { backoffMs } from '../../src/retry/backoff.js'
import { FIXTURES } from '../support/daemon.js'
import { eventually, pendingCount, testRedis, waitForEntries } from '../support/redis.js'
import { startTestRuntime } from '../support/runtime.js'

const handler = (name: string) => path.join(FIXTURES, name)

test('a handler failing twice then succeeding runs three times, with gaps that follow the backoff', async (t) => {
  const { redis, key } = testRedis(t)
  const stream = key('orders')
  const seen = key('seen')
  const policy = { retryBaseMs: 300, retryMaxMs: 10_000, retryJitter: 0 }
  await startTestRuntime(t, {
    consumers: [
      { name: 'orders', stream, group: 'g', handler: handler('flaky.mjs'), maxAttempts: 5, ...policy },
    ],
  })
  const entryId = (await redis.xadd(stream, '*', 'payload', '{}', 'seen', seen, 'failures', '2'))!
  const calls = await waitForEntries(redis, seen, 3)
  await eventually(async () => (await pendingCount(redis, stream, 'g')) === 0, { what: 'the final XACK' })

  assert.deepEqual(
    calls.map((c) => c.attempt),
    ['1', '2', '3'],
  )
  const at = calls.map((c) => Number(c.at))
  const gaps = [at[1]! - at[0]!, at[2]! - at[1]!]
  const expected = [backoffMs(1, policy, entryId), backoffMs(2, policy, entryId)]
  assert.deepEqual(expected, [300, 600])
  // Never early (the PEL idle time must reach the backoff); late by at most one scheduling slack.
  for (const [i, gap] of gaps.entries()) {
    assert.ok(
      gap >= expected[i]! - 15 && gap <= expected[i]! + 500,
      `gap ${i + 1} was ${gap} ms, backoff ${expected[i]} ms`,
    )
  }
  await new Promise((r) => setTimeout(r, 400))
  assert.equal((await waitForEntries(redis, seen, 3)).length, 3, 'no run after the success')
})

test('after maxAttempts the message is in the dead-letter stream with its error and attempts, and acked', async (t) => {
  const { redis, key } = testRedis(t)
  const stream = key('orders')
  await startTestRuntime(t, {
    consumers: [
      {
        name: 'orders',
        stream,
        group: 'g',
        handler: handler('throws.mjs'),
        maxAttempts: 3,
        retryBaseMs: 50,
        retryJitter: 0,
      },
    ],
  })
  const entryId = (await redis.xadd(stream, '*', 'id', 'o-1', 'payload', '{"total":1}'))!
  const [dead] = await waitForEntries(redis, `{${stream}}:dlq`, 1)
  assert.deepEqual(
    {
      id: dead!.id,
      payload: dead!.payload,
      error: dead!['dlq.error'],
      attempts: dead!['dlq.attempts'],
      entryId: dead!['dlq.entryId'],
    },
    {
      id: 'o-1',
      payload: '{"total":1}',
      error: JSON.stringify({ name: 'Error', code: 'E_PAYMENT', message: 'payment service refused' }),
      attempts: '3',
      entryId,
    },
  )
  await eventually(async () => (await pendingCount(redis, stream, 'g')) === 0, { what: 'the XACK' })
})

test('an entry deleted while pending is dead-lettered with ACK_ERR_ENTRY_GONE instead of vanishing', async (t) => {
  const { redis, key } = testRedis(t)
  const stream = key('orders')
  const { logs } = await startTestRuntime(t, {
    consumers: [
      {
        name: 'orders',
        stream,
        group: 'g',
        handler: handler('throws.mjs'),
        maxAttempts: 5,
        retryBaseMs: 300,
        retryJitter: 0,
      },
    ],
  })
  const entryId = (await redis.xadd(stream, '*', 'payload', '{}'))!
  await eventually(() => logs.some((l) => l.msg === 'handler failed; retrying'), {
    what: 'the first failure',
  })
  await redis.xdel(stream, entryId)
  const [dead] = await waitForEntries(redis, `{${stream}}:dlq`, 1)
  assert.deepEqual(
    {
      id: dead!.id,
      entryId: dead!['dlq.entryId'],
      code: (JSON.parse(dead!['dlq.error']!) as { code: string }).code,
      attempts: dead!['dlq.attempts'],
    },
    { id: entryId, entryId, code: 'ACK_ERR_ENTRY_GONE', attempts: '2' },
  )
  assert.equal(await pendingCount(redis, stream, 'g'), 0)
})
