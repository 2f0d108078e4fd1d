import assert from 'node:assert/strict'
import path from 'node:path'
import { test } from 'node:test'
import { FIXTURES, runCli, writeConfig } from '../support/daemon.js'
import { eventually, pendingCount, readAll, testRedis } from '../support/redis.js'

const heartbeatTtlMs = 1_000
const intervalMs = 250

test('kill -9 with messages in flight: a second daemon re-delivers them within the heartbeat TTL and one interval', async (t) => {
  const { redis, key } = testRedis(t)
  const stream = key('orders')
  const seen = key('seen')
  const config = writeConfig(t, {
    reclaim: { intervalMs, heartbeatTtlMs },
    consumers: [
      { name: 'orders', stream, group: 'g', handler: path.join(FIXTURES, 'hangsFirst.mjs'), batchSize: 10 },
    ],
  })
  for (let i = 0; i < 3; i++) await redis.xadd(stream, '*', 'id', `m-${i}`, 'payload', '{}', 'seen', seen)

  const first = runCli(t, ['start', '--config', config])
  await eventually(async () => (await readAll(redis, seen)).length === 3, {
    what: 'three handlers in flight',
  })
  // The second daemon is up and idle before the first dies.
  const second = runCli(t, ['start', '--config', config])
  await second.waitForLog((l) => l.msg === 'connected to redis')
  first.child.kill('SIGKILL')
  const killedAt = Date.now()
  await first.exited

  const completed = await eventually(
    async () => {
      const done = (await readAll(redis, seen)).filter(([, f]) => f.completed)
      return done.length === 3 && done
    },
    { timeoutMs: 10_000, what: 'the three messages to complete on the second daemon' },
  )
  const latest = Math.max(...completed.map(([, f]) => Number(f.at)))
  const recoveryMs = latest - killedAt
  t.diagnostic(
    `re-delivered and completed ${recoveryMs} ms after kill -9 (TTL ${heartbeatTtlMs} ms, interval ${intervalMs} ms)`,
  )
  // TTL for the heartbeat to expire, one interval for the reclaim pass, one for the consumer's scan.
  assert.ok(recoveryMs <= heartbeatTtlMs + 2 * intervalMs + 750, `recovered after ${recoveryMs} ms`)
  assert.deepEqual(completed.map(([, f]) => f.completed).sort(), ['m-0', 'm-1', 'm-2'])
  const secondConsumer = (await readAll(redis, seen)).find(([, f]) => f.attempt === '2')![1].consumer
  assert.ok(
    completed.every(([, f]) => f.consumer === secondConsumer),
    'all completed on the second daemon',
  )
  await eventually(async () => (await pendingCount(redis, stream, 'g')) === 0, { what: 'the XACKs' })
  assert.ok(
    second.logs.some((l) => l.msg === 'reclaimed pending entries of a dead consumer' && l.count === 3),
  )

  // The dead consumer is removed from the group once its PEL is empty.
  await eventually(
    async () => {
      const consumers = (await redis.xinfo('CONSUMERS', stream, 'g')) as unknown[][]
      return consumers.length === 1
    },
    { what: 'the dead consumer to be removed' },
  )
  second.child.kill('SIGTERM')
  assert.equal((await second.exited).code, 0)
})

test("a live daemon's long-running handler is never taken by another daemon", async (t) => {
  const { redis, key } = testRedis(t)
  const stream = key('orders')
  const seen = key('seen')
  const config = writeConfig(t, {
    reclaim: { intervalMs, heartbeatTtlMs },
    consumers: [{ name: 'orders', stream, group: 'g', handler: path.join(FIXTURES, 'slow.mjs') }],
  })
  await redis.xadd(stream, '*', 'payload', '{}', 'seen', seen, 'ms', String(heartbeatTtlMs * 4))
  const first = runCli(t, ['start', '--config', config])
  await eventually(async () => (await readAll(redis, seen)).length === 1, { what: 'the handler to start' })
  const second = runCli(t, ['start', '--config', config])
  await second.waitForLog((l) => l.msg === 'connected to redis')
  await eventually(async () => (await readAll(redis, seen)).some(([, f]) => f.finished), {
    timeoutMs: heartbeatTtlMs * 8,
    what: 'the handler to finish',
  })
  const rows = await readAll(redis, seen)
  assert.deepEqual(
    rows.map(([, f]) => Object.keys(f)[0]),
    ['started', 'finished'],
    'started once, never re-delivered',
  )
  assert.equal(second.logs.filter((l) => l.msg === 'reclaimed pending entries of a dead consumer').length, 0)
  first.child.kill('SIGTERM')
  second.child.kill('SIGTERM')
  assert.equal((await first.exited).code, 0)
  assert.equal((await second.exited).code, 0)
})
