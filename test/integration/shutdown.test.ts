import assert from 'node:assert/strict'
import path from 'node:path'
import { test } from 'node:test'
import { FIXTURES, runCli, writeConfig } from '../support/daemon.js'
import { eventually, groupInfo, pendingCount, readAll, testRedis } from '../support/redis.js'

const slow = path.join(FIXTURES, 'slow.mjs')

// SIGINT (Ctrl-C in a terminal) drains exactly as SIGTERM (the platform's stop) does.
for (const signal of ['SIGTERM', 'SIGINT'] as const)
  test(`${signal} during slow handlers: they finish, are acked, nothing more is read, exit 0`, async (t) => {
    const { redis, key } = testRedis(t)
    const stream = key('orders')
    const seen = key('seen')
    for (let i = 0; i < 6; i++) await redis.xadd(stream, '*', 'payload', `${i}`, 'seen', seen, 'ms', '1500')
    const config = writeConfig(t, {
      consumers: [{ name: 'orders', stream, group: 'g', handler: slow, batchSize: 2, concurrency: 2 }],
    })
    const daemon = runCli(t, ['start', '--config', config])

    await eventually(async () => (await readAll(redis, seen)).filter(([, f]) => f.started).length === 2, {
      what: 'two handlers in flight',
    })
    daemon.child.kill(signal)
    // A second signal must not restart the drain.
    setTimeout(() => daemon.child.kill(signal), 100)
    const { code } = await daemon.exited

    assert.equal(code, 0, daemon.stderr())
    const rows = await readAll(redis, seen)
    assert.deepEqual(
      rows.map(([, f]) => Object.keys(f)[0]),
      ['started', 'started', 'finished', 'finished'],
      'both in-flight handlers finished before the exit, and nothing else started',
    )
    const info = await groupInfo(redis, stream, 'g')
    assert.deepEqual(
      { pending: info.pending, read: info['entries-read'], lag: info.lag },
      { pending: 0, read: 2, lag: 4 },
    )
    assert.ok(daemon.logs.some((l) => l.msg === 'already draining; signal ignored'))
    assert.deepEqual(
      daemon.logs
        .filter((l) => l.msg === 'stopped')
        .map((l) => ({ exitCode: l.exitCode, timedOut: l.timedOut })),
      [{ exitCode: 0, timedOut: false }],
    )
  })

test('SIGTERM with a handler that outlives shutdown.timeoutMs: exit within the timeout, entry left pending and named', async (t) => {
  const { redis, key } = testRedis(t)
  const stream = key('orders')
  const seen = key('seen')
  const entryId = (await redis.xadd(stream, '*', 'payload', '{}', 'seen', seen, 'ms', '20000'))!
  const timeoutMs = 2_000
  const config = writeConfig(t, {
    shutdown: { timeoutMs },
    consumers: [{ name: 'orders', stream, group: 'g', handler: slow }],
  })
  const daemon = runCli(t, ['start', '--config', config])
  await eventually(async () => (await readAll(redis, seen)).length === 1, { what: 'the handler to start' })

  const signalledAt = Date.now()
  daemon.child.kill('SIGTERM')
  const { code, at } = await daemon.exited

  assert.equal(code, 0, daemon.stderr())
  // The budget is measured in the daemon; the margin here only covers process exit and pipe latency.
  assert.ok(at - signalledAt < timeoutMs + 1_000, `exited ${at - signalledAt} ms after SIGTERM`)
  assert.equal(await pendingCount(redis, stream, 'g'), 1)
  const left = daemon.logs.find((l) => l.msg === 'shutdown timed out; entries left pending for re-delivery')
  assert.deepEqual(left && { entryIds: left.entryIds, count: left.count }, { entryIds: [entryId], count: 1 })
})

test('a consumer that keeps crashing is restarted a bounded number of times, then the daemon exits 1', async (t) => {
  const { redis, key } = testRedis(t)
  const stream = key('orders')
  await redis.set(stream, 'not a stream')
  const config = writeConfig(t, {
    supervisor: { maxRestarts: 1 },
    consumers: [{ name: 'orders', stream, group: 'g', handler: slow }],
  })
  const daemon = runCli(t, ['start', '--config', config])
  const { code } = await daemon.exited
  assert.equal(code, 1)
  const crashes = daemon.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('consumer crashed'))
  assert.deepEqual(
    crashes.map((l) => ({ msg: l.msg, consumer: l.consumer, code: (l.err as { code: string }).code })),
    [
      { msg: 'consumer crashed; restarting', consumer: 'orders', code: 'ACK_ERR_REDIS_COMMAND' },
      {
        msg: 'consumer crashed too often; stopping the daemon',
        consumer: 'orders',
        code: 'ACK_ERR_REDIS_COMMAND',
      },
    ],
  )
  assert.match((crashes[0]!.err as { message: string }).message, /WRONGTYPE/)
})
