import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createActor, fromPromise, setup, SimulatedClock, type AnyActorLogic, type AnyActorRef } from 'xstate'
import type { consumerMachine } from '../../machines/consumerMachine.js'
import type { reclaimerMachine } from '../../machines/reclaimerMachine.js'
import { supervisorMachine } from '../../machines/supervisorMachine.js'
import type { ConsumerInput } from '../../machines/types.js'
import { settle } from '../support/machine.js'

const consumer = (name: string): ConsumerInput => ({
  name,
  stream: name,
  group: 'g',
  consumer: 'c1',
  batchSize: 10,
  blockMs: 100,
  maxAttempts: 3,
})

/**
 * A stand-in consumer: stays `running` until asked to shut down, then stops after `stop.delay`
 * simulated ms; crashes on `crash`. Lets the supervisor be tested without the real consumer's I/O.
 */
const fakeConsumer = setup({
  types: { input: {} as ConsumerInput, events: {} as { type: 'shutdown.request' } | { type: 'crash' } },
  actors: {
    boom: fromPromise<void>(async () => {
      throw new Error('consumer exploded')
    }),
  },
}).createMachine({
  initial: 'running',
  states: {
    running: { on: { 'shutdown.request': 'stopping', crash: 'crashing' } },
    crashing: { invoke: { src: 'boom' } },
    stopping: { after: { 300: 'stopped' } },
    stopped: { type: 'final' },
  },
})

const reclaim = { consumer: 'c1', intervalMs: 1000, heartbeatTtlMs: 3000, targets: [] }

function harness(
  consumers = [consumer('a'), consumer('b')],
  maxRestarts = 2,
  logic: AnyActorLogic = fakeConsumer,
  restartWindowMs = 600_000,
) {
  const closes: { force: boolean }[] = []
  const crashes: { name: string; restart: boolean; delayMs: number }[] = []
  let unfinishedReports = 0
  const machine = supervisorMachine.provide({
    actors: {
      consumer: logic as unknown as typeof consumerMachine,
      // The reclaimer stand-in behaves like the consumer one: runs until asked to stop.
      reclaimer: fakeConsumer as unknown as typeof reclaimerMachine,
      openResources: fromPromise(async () => {}),
      closeResources: fromPromise<void, { force: boolean }>(async ({ input }) => void closes.push(input)),
    },
    actions: {
      reportCrash: (_, p) => void crashes.push({ name: p.name, restart: p.restart, delayMs: p.delayMs }),
      reportUnfinished: () => void unfinishedReports++,
    },
  })
  const clock = new SimulatedClock()
  const actor = createActor(machine, {
    clock,
    input: {
      consumers,
      maxRestarts,
      restartWindowMs,
      drainTimeoutMs: 1_000,
      reclaim,
      republish: null,
      delay: null,
    },
  })
  actor.start()
  const child = (name: string) => actor.getSnapshot().children[`consumer-${name}`] as AnyActorRef | undefined
  return { actor, clock, closes, crashes, child, unfinished: () => unfinishedReports }
}

test('spawns one consumer actor per configured consumer and the reclaimer, registered by system id', async () => {
  const h = harness()
  await settle()
  assert.equal(h.actor.getSnapshot().value, 'running')
  assert.deepEqual(Object.keys(h.actor.getSnapshot().children).sort(), [
    'consumer-a',
    'consumer-b',
    'reclaimer',
  ])
  assert.equal(h.actor.system.get('consumer-a'), h.child('a'))
  assert.ok(h.actor.system.get('reclaimer'))
  assert.deepEqual(h.actor.getSnapshot().context.running, ['consumer-a', 'consumer-b', 'reclaimer'])
})

test('a crashed reclaimer is restarted like a consumer', async () => {
  const h = harness()
  await settle()
  const first = h.actor.system.get('reclaimer') as AnyActorRef
  first.send({ type: 'crash' })
  await settle()
  assert.deepEqual(h.crashes, [{ name: 'reclaimer', restart: true, delayMs: 500 }])
  h.clock.increment(500)
  await settle()
  const second = h.actor.system.get('reclaimer') as AnyActorRef
  assert.notEqual(second, first)
  assert.deepEqual(h.actor.getSnapshot().context.restarts, { reclaimer: 1 })
})

test('restarts a crashed consumer after a delay, under the same id', async () => {
  const h = harness()
  await settle()
  const first = h.child('a')!
  first.send({ type: 'crash' })
  await settle()
  assert.deepEqual(h.crashes, [{ name: 'a', restart: true, delayMs: 500 }])
  assert.equal(h.child('a'), undefined, 'the crashed actor is gone until the restart')
  h.clock.increment(500)
  await settle()
  const second = h.child('a')!
  assert.notEqual(second, first)
  assert.equal(second.getSnapshot().status, 'active')
  assert.equal(h.actor.system.get('consumer-a'), second)
  assert.deepEqual(h.actor.getSnapshot().context.restarts, { 'consumer-a': 1 })
})

test('gives up after maxRestarts: drains the others and stops with exit code 1', async () => {
  const h = harness([consumer('a'), consumer('b')], 1)
  await settle()
  h.child('a')!.send({ type: 'crash' })
  await settle()
  h.clock.increment(500)
  await settle()
  h.child('a')!.send({ type: 'crash' })
  await settle()
  assert.deepEqual(
    h.crashes.map((c) => c.restart),
    [true, false],
  )
  assert.equal(h.actor.getSnapshot().value, 'draining')
  h.clock.increment(300)
  await settle()
  assert.equal(h.actor.getSnapshot().status, 'done')
  assert.deepEqual(h.actor.getSnapshot().output, {
    exitCode: 1,
    timedOut: false,
    failure: { consumer: 'a', message: 'consumer exploded' },
  })
})

test('crashes spaced beyond the restart window never exhaust the budget, and the backoff starts over', async () => {
  const h = harness([consumer('a')], 2, fakeConsumer, 10_000)
  await settle()
  for (let i = 0; i < 5; i++) {
    h.child('a')!.send({ type: 'crash' })
    await settle()
    h.clock.increment(500)
    await settle()
    assert.equal(h.child('a')?.getSnapshot().status, 'active', `restarted after crash ${i + 1}`)
    // A day of quiet (here: the window) forgets the crash.
    h.clock.increment(10_000)
    await settle()
  }
  assert.deepEqual(h.crashes, Array(5).fill({ name: 'a', restart: true, delayMs: 500 }))
  assert.equal(h.actor.getSnapshot().value, 'running')
  assert.deepEqual(h.actor.getSnapshot().context.restarts, { 'consumer-a': 5 }, 'the total keeps counting')
})

test('maxRestarts + 1 crashes within the restart window stop the daemon with exit code 1', async () => {
  const h = harness([consumer('a')], 2, fakeConsumer, 10_000)
  await settle()
  for (const delayMs of [500, 1_000]) {
    h.child('a')!.send({ type: 'crash' })
    await settle()
    h.clock.increment(delayMs)
    await settle()
  }
  // 1.5 s after the first crash, well inside the window.
  h.child('a')!.send({ type: 'crash' })
  await settle()
  assert.deepEqual(h.crashes, [
    { name: 'a', restart: true, delayMs: 500 },
    { name: 'a', restart: true, delayMs: 1_000 },
    { name: 'a', restart: false, delayMs: 0 },
  ])
  h.clock.increment(300)
  await settle()
  assert.equal(h.actor.getSnapshot().status, 'done')
  assert.equal(h.actor.getSnapshot().output?.exitCode, 1)
})

test('shutdown drains every consumer, then closes resources once, and a second request changes nothing', async () => {
  const h = harness()
  await settle()
  h.actor.send({ type: 'shutdown.request' })
  await settle()
  assert.equal(h.actor.getSnapshot().value, 'draining')
  assert.equal(h.child('a')!.getSnapshot().value, 'stopping')
  h.clock.increment(200)
  h.actor.send({ type: 'shutdown.request' })
  await settle()
  assert.equal(h.child('a')!.getSnapshot().value, 'stopping', 'the drain is not restarted')
  h.clock.increment(100)
  await settle()
  assert.equal(h.actor.getSnapshot().status, 'done')
  assert.deepEqual(h.closes, [{ force: false }])
  assert.deepEqual(h.actor.getSnapshot().output, { exitCode: 0, timedOut: false, failure: null })
})

test('a drain that outlives its budget reports the unfinished work and closes by force', async () => {
  const slow = setup({ types: { input: {} as ConsumerInput } }).createMachine({
    initial: 'running',
    states: { running: { on: { 'shutdown.request': 'stuck' } }, stuck: {} },
  })
  const h = harness([consumer('a')], 2, slow)
  await settle()
  h.actor.send({ type: 'shutdown.request' })
  await settle()
  h.clock.increment(999)
  await settle()
  assert.equal(h.actor.getSnapshot().value, 'draining')
  assert.equal(h.unfinished(), 0)
  h.clock.increment(1)
  await settle()
  assert.equal(h.unfinished(), 1)
  assert.deepEqual(h.closes, [{ force: true }])
  assert.deepEqual(h.actor.getSnapshot().output, { exitCode: 0, timedOut: true, failure: null })
})

test('a pending restart does not bring a consumer back during the drain', async () => {
  const h = harness([consumer('a'), consumer('b')])
  await settle()
  h.child('a')!.send({ type: 'crash' })
  await settle()
  h.actor.send({ type: 'shutdown.request' })
  await settle()
  h.clock.increment(500)
  await settle()
  assert.equal(h.child('a'), undefined)
})

test('a reload drains removed and changed consumers, starts added ones, and restarts changed ones once drained', async () => {
  const activated: string[] = []
  const machine = supervisorMachine.provide({
    actors: {
      consumer: fakeConsumer as unknown as typeof consumerMachine,
      reclaimer: fakeConsumer as unknown as typeof reclaimerMachine,
      openResources: fromPromise(async () => {}),
      closeResources: fromPromise<void, { force: boolean }>(async () => {}),
    },
    actions: { activateConsumer: (_, p) => void activated.push(p.name) },
  })
  const clock = new SimulatedClock()
  const consumers = [consumer('keep'), consumer('drop'), consumer('change')]
  const actor = createActor(machine, {
    clock,
    input: {
      consumers,
      maxRestarts: 2,
      restartWindowMs: 600_000,
      drainTimeoutMs: 1_000,
      reclaim,
      republish: null,
      delay: null,
    },
  }).start()
  await settle()
  const child = (name: string) => actor.getSnapshot().children[`consumer-${name}`] as AnyActorRef | undefined
  const kept = child('keep')
  const oldChange = child('change')

  actor.send({
    type: 'reload.request',
    consumers: [consumer('keep'), { ...consumer('change'), batchSize: 50 }, consumer('add')],
    changed: ['change'],
  })
  await settle()
  assert.equal(child('keep'), kept, 'an unchanged consumer keeps running untouched')
  assert.equal(child('keep')!.getSnapshot().value, 'running')
  assert.equal(child('drop')!.getSnapshot().value, 'stopping')
  assert.equal(child('change'), oldChange, 'the old actor drains first')
  assert.equal(oldChange!.getSnapshot().value, 'stopping')
  assert.equal(child('add')!.getSnapshot().value, 'running')
  assert.deepEqual(activated, ['add'])

  clock.increment(300)
  await settle()
  assert.ok(child('drop') === undefined || child('drop')!.getSnapshot().status === 'done')
  assert.ok(!actor.getSnapshot().context.running.includes('consumer-drop'))
  assert.notEqual(child('change'), oldChange, 'replaced once the old one stopped')
  assert.equal(child('change')!.getSnapshot().value, 'running')
  assert.deepEqual(activated, ['add', 'change'])
  assert.deepEqual(
    actor.getSnapshot().context.consumers.map((c) => [c.name, c.batchSize]),
    [
      ['keep', 10],
      ['change', 50],
      ['add', 10],
    ],
  )
  assert.deepEqual(actor.getSnapshot().context.replacing, {})
})
