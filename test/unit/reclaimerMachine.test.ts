import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createActor, fromPromise, SimulatedClock } from 'xstate'
import { reclaimerMachine } from '../../machines/reclaimerMachine.js'
import type { ReclaimInput, ReclaimResult } from '../../machines/types.js'
import { codedError, settle } from '../support/machine.js'

const input: ReclaimInput = {
  consumer: 'c1',
  intervalMs: 1000,
  heartbeatTtlMs: 3000,
  targets: [{ name: 'orders', stream: 'orders', group: 'g' }],
}

function harness(results: (ReclaimResult | Error)[], beatFails = false) {
  const calls: string[] = []
  const woken: string[][] = []
  const machine = reclaimerMachine.provide({
    actors: {
      heartbeat: fromPromise(async () => {
        calls.push('beat')
        if (beatFails) throw codedError('ACK_ERR_REDIS_UNAVAILABLE')
      }),
      reclaimOrphans: fromPromise(async () => {
        calls.push('scan')
        const next = results.shift() ?? { reclaimed: 0, removedConsumers: 0, consumers: [] }
        if (next instanceof Error) throw next
        return next
      }),
      trimStreams: fromPromise<number, ReclaimInput>(async () => (calls.push('trim'), 3)),
      releaseHeartbeat: fromPromise<void, ReclaimInput>(async () => {
        calls.push('release')
      }),
    },
    actions: { wakeConsumers: (_, p) => void woken.push(p.names) },
  })
  const clock = new SimulatedClock()
  const actor = createActor(machine, { input, clock }).start()
  return { actor, clock, calls, woken }
}

test('beats, scans, then waits one interval before the next round', async () => {
  const h = harness([{ reclaimed: 2, removedConsumers: 1, consumers: ['orders'] }])
  await settle()
  assert.deepEqual(h.calls, ['beat', 'scan', 'trim'])
  assert.equal(h.actor.getSnapshot().value, 'waiting')
  assert.deepEqual(h.woken, [['orders']], 'the consumer that received orphans is told to scan now')
  h.clock.increment(999)
  await settle()
  assert.deepEqual(h.calls, ['beat', 'scan', 'trim'])
  h.clock.increment(1)
  await settle()
  assert.deepEqual(h.calls, ['beat', 'scan', 'trim', 'beat', 'scan', 'trim'])
  assert.deepEqual(h.actor.getSnapshot().context.stats, {
    beats: 2,
    scans: 2,
    reclaimed: 2,
    removedConsumers: 1,
    trimmed: 6,
    failures: 0,
  })
})

test('a failed pass is counted and retried on the next interval, never crashing the reclaimer', async () => {
  const h = harness([new Error('XINFO failed')])
  await settle()
  assert.equal(h.actor.getSnapshot().value, 'waiting')
  assert.deepEqual(
    {
      failures: h.actor.getSnapshot().context.stats.failures,
      lastError: h.actor.getSnapshot().context.lastError,
    },
    { failures: 1, lastError: 'XINFO failed' },
  )
  h.clock.increment(1000)
  await settle()
  assert.equal(h.actor.getSnapshot().context.stats.scans, 1)
})

test('a failed heartbeat skips the scan and tries again after the interval', async () => {
  const h = harness([], true)
  await settle()
  assert.deepEqual(h.calls, ['beat'])
  h.clock.increment(1000)
  await settle()
  assert.deepEqual(h.calls, ['beat', 'beat'])
})

test('shutdown deletes the heartbeat and stops', async () => {
  const h = harness([])
  await settle()
  h.actor.send({ type: 'shutdown.request' })
  await settle()
  assert.deepEqual(h.calls, ['beat', 'scan', 'trim', 'release'])
  assert.equal(h.actor.getSnapshot().status, 'done')
})
