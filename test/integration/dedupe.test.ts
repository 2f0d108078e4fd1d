import assert from 'node:assert/strict'
import path from 'node:path'
import { test } from 'node:test'
import { dedupeRules, readMark } from '../../src/redis/dedupe.js'
import { FIXTURES } from '../support/daemon.js'
import { eventually, groupInfo, readAll, testRedis, waitForEntries } from '../support/redis.js'
import { startTestRuntime } from '../support/runtime.js'

const ok = path.join(FIXTURES, 'ok.mjs')
/** The marks' rules of a consumer on the defaults (dedupeTtlMs, handlerTimeoutMs). */
const rules = dedupeRules({ dedupeTtlMs: 3_600_000, handlerTimeoutMs: 30_000 })

test('the same id XADDed twice runs the handler once; both entries are acked', async (t) => {
  const { redis, key } = testRedis(t)
  const stream = key('orders')
  const seen = key('seen')
  const { logs } = await startTestRuntime(t, {
    consumers: [{ name: 'orders', stream, group: 'g', handler: ok }],
  })
  // In one batch, and again after the first completed.
  await redis.xadd(stream, '*', 'id', 'o-1', 'payload', '{}', 'seen', seen)
  await redis.xadd(stream, '*', 'id', 'o-1', 'payload', '{}', 'seen', seen)
  await waitForEntries(redis, seen, 1)
  await eventually(async () => (await groupInfo(redis, stream, 'g'))['entries-read'] === 2 && true)
  await redis.xadd(stream, '*', 'id', 'o-1', 'payload', '{}', 'seen', seen)
  await eventually(
    async () => {
      const info = await groupInfo(redis, stream, 'g')
      return info['entries-read'] === 3 && info.pending === 0
    },
    { what: 'all three entries acked' },
  )
  assert.equal((await readAll(redis, seen)).length, 1, 'the handler ran once')
  assert.equal(await readMark(redis, { stream, group: 'g' }, 'o-1', rules), 'done')
  assert.ok(logs.some((l) => l.msg === 'duplicate messages acked without running'))
})

test('deduplication is per group: another group runs the same id', async (t) => {
  const { redis, key } = testRedis(t)
  const stream = key('orders')
  const seen = key('seen')
  await startTestRuntime(t, {
    consumers: [
      { name: 'billing', stream, group: 'billing', handler: ok },
      { name: 'shipping', stream, group: 'shipping', handler: ok },
    ],
  })
  await redis.xadd(stream, '*', 'id', 'o-7', 'payload', '{}', 'seen', seen)
  await waitForEntries(redis, seen, 2)
  await new Promise((r) => setTimeout(r, 200))
  assert.equal((await readAll(redis, seen)).length, 2)
})

test('dedupeTtlMs 0 turns deduplication off', async (t) => {
  const { redis, key } = testRedis(t)
  const stream = key('orders')
  const seen = key('seen')
  await startTestRuntime(t, {
    consumers: [{ name: 'orders', stream, group: 'g', handler: ok, dedupeTtlMs: 0 }],
  })
  await redis.xadd(stream, '*', 'id', 'o-1', 'payload', '{}', 'seen', seen)
  await redis.xadd(stream, '*', 'id', 'o-1', 'payload', '{}', 'seen', seen)
  await waitForEntries(redis, seen, 2)
  assert.deepEqual(await redis.keys(`{${stream}}:dedupe:*`), [])
})

test('a duplicate acked while its twin is still failing does not mark the id done: the twin retries and succeeds', async (t) => {
  const { redis, key } = testRedis(t)
  const stream = key('orders')
  const seen = key('seen')
  // Both entries are in the stream before the consumer starts (its group starts at 0), so one batch
  // holds them: the first claims o-1 and fails its first attempt, the second is acked as a duplicate.
  await redis.xadd(stream, '*', 'id', 'o-1', 'payload', '{}', 'seen', seen, 'failures', '1')
  await redis.xadd(stream, '*', 'id', 'o-1', 'payload', '{}', 'seen', seen, 'failures', '1')
  await startTestRuntime(t, {
    consumers: [
      {
        name: 'orders',
        stream,
        group: 'g',
        handler: path.join(FIXTURES, 'flaky.mjs'),
        retryBaseMs: 50,
        retryJitter: 0,
      },
    ],
  })
  await eventually(
    async () => {
      const info = await groupInfo(redis, stream, 'g').catch(() => null)
      return info?.['entries-read'] === 2 && info.pending === 0
    },
    { what: 'both entries acked' },
  )
  const attempts = (await readAll(redis, seen)).map(([, f]) => f.attempt)
  assert.deepEqual(attempts, ['1', '2'], 'the failed entry ran again and succeeded; its twin never ran')
  assert.equal(await readMark(redis, { stream, group: 'g' }, 'o-1', rules), 'done')
})
