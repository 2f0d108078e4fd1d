import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createActor, fromCallback, fromPromise, SimulatedClock, type AnyActorRef } from 'xstate'
import { delayMachine, type DelayEvent } from '../../machines/delayMachine.js'
import { republisherMachine } from '../../machines/republisherMachine.js'
import type { DelayInput, ReleaseResult, RepublishInput } from '../../machines/types.js'
import { settle } from '../support/machine.js'

const republishInput: RepublishInput = {
  consumer: 'c1',
  intervalMs: 1000,
  batchSize: 10,
  republishAfterMs: 5000,
  staleAfterMs: 600_000,
}

function republisher(results: number[]) {
  const passes: number[] = []
  let prunes = 0
  const machine = republisherMachine.provide({
    actors: {
      republish: fromPromise(async () => {
        const resent = results.shift() ?? 0
        passes.push(resent)
        return { resent }
      }),
      pruneSettled: fromPromise(async () => (prunes++, 0)),
    },
  })
  const clock = new SimulatedClock()
  const actor = createActor(machine, { input: republishInput, clock }).start()
  return { actor, clock, passes, prunes: () => prunes }
}

test('the republisher goes again at once after a full batch, else prunes and waits an interval', async () => {
  const h = republisher([10, 3])
  await settle()
  assert.deepEqual(h.passes, [10, 3], 'a full batch is followed by another pass without waiting')
  assert.equal(h.actor.getSnapshot().value, 'waiting')
  assert.equal(h.prunes(), 1)
  h.clock.increment(1000)
  await settle()
  assert.deepEqual(h.passes, [10, 3, 0])
  assert.deepEqual(h.actor.getSnapshot().context.stats, { scans: 3, resent: 13, failures: 0, pruned: 0 })
})

test('the republisher finishes the pass in flight before it stops', async () => {
  let release!: (v: { resent: number }) => void
  const machine = republisherMachine.provide({
    actors: {
      republish: fromPromise(() => new Promise<{ resent: number }>((r) => (release = r))),
      pruneSettled: fromPromise(async () => 0),
    },
  })
  const actor = createActor(machine, { input: republishInput, clock: new SimulatedClock() }).start()
  await settle()
  actor.send({ type: 'shutdown.request' })
  await settle()
  assert.equal(actor.getSnapshot().value, 'scanning', 'the row locks are held until the pass ends')
  release({ resent: 2 })
  await settle()
  assert.equal(actor.getSnapshot().status, 'done')
  assert.equal(actor.getSnapshot().context.stats.resent, 2)
})

const delayInput: DelayInput = { consumer: 'c1', batchSize: 10, maxIdleMs: 5000 }

function scheduler(results: ReleaseResult[]) {
  const passes: number[] = []
  let listener: AnyActorRef | undefined
  let notify: ((ev: DelayEvent) => void) | undefined
  const clock = new SimulatedClock()
  const machine = delayMachine.provide({
    actors: {
      releaseDue: fromPromise(async () => {
        passes.push(clock.now())
        return results.shift() ?? { released: 0, nextDueInMs: null, now: clock.now() }
      }),
      listenForDelays: fromCallback<DelayEvent, DelayInput>(({ sendBack, self }) => {
        listener = self
        notify = sendBack
      }),
    },
  })
  const actor = createActor(machine, { input: delayInput, clock }).start()
  return { actor, clock, passes, notify: (ev: DelayEvent) => notify!(ev), listener: () => listener }
}

test('the delay scheduler sleeps exactly until the next row is due', async () => {
  const h = scheduler([{ released: 1, nextDueInMs: 750, now: 0 }])
  await settle()
  assert.equal(h.actor.getSnapshot().value, 'waiting')
  assert.equal(h.actor.getSnapshot().context.sleepMs, 750)
  h.clock.increment(749)
  await settle()
  assert.equal(h.passes.length, 1)
  h.clock.increment(1)
  await settle()
  assert.equal(h.passes.length, 2)
})

test('with nothing pending it sleeps maxIdleMs; a nearer new delay wakes it, a later one does not', async () => {
  const h = scheduler([{ released: 0, nextDueInMs: 3000, now: 0 }])
  await settle()
  assert.equal(h.actor.getSnapshot().context.wakeAt, 3000)
  h.notify({ type: 'delay.scheduled', dueAt: 4000 })
  await settle()
  assert.equal(h.passes.length, 1, 'a later delay does not wake it')
  h.notify({ type: 'delay.scheduled', dueAt: 200 })
  await settle()
  assert.equal(h.passes.length, 2, 'an earlier one does')
  assert.equal(h.actor.getSnapshot().context.sleepMs, 5000, 'nothing pending: sleep the idle bound')
  assert.equal(h.actor.getSnapshot().context.stats.wakeups, 1)
})

test('a delay announced during a pass shortens the sleep planned after it', async () => {
  let finish!: (r: ReleaseResult) => void
  const clock = new SimulatedClock()
  let notify!: (ev: DelayEvent) => void
  const machine = delayMachine.provide({
    actors: {
      releaseDue: fromPromise(() => new Promise<ReleaseResult>((r) => (finish = r))),
      listenForDelays: fromCallback<DelayEvent, DelayInput>(({ sendBack }) => {
        notify = sendBack
      }),
    },
  })
  const actor = createActor(machine, { input: delayInput, clock }).start()
  await settle()
  notify({ type: 'delay.scheduled', dueAt: 100 })
  finish({ released: 0, nextDueInMs: 4000, now: 0 })
  await settle()
  assert.equal(actor.getSnapshot().context.sleepMs, 100)
})

test('more rows due right away are released without sleeping; shutdown waits for the pass', async () => {
  const h = scheduler([
    { released: 10, nextDueInMs: 0, now: 0 },
    { released: 2, nextDueInMs: null, now: 0 },
  ])
  await settle()
  assert.equal(h.passes.length, 2)
  h.actor.send({ type: 'shutdown.request' })
  await settle()
  assert.equal(h.actor.getSnapshot().status, 'done')
  assert.equal(h.actor.getSnapshot().context.stats.released, 12)
})
