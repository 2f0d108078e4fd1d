import assert from 'node:assert/strict'
import { test } from 'node:test'
import { assign, createActor, setup } from 'xstate'
import { consumerMachine } from '../../machines/consumerMachine.js'
import type {
  ClaimInput,
  ConsumerRef,
  Entry,
  Outcome,
  ProcessInput,
  ReadInput,
  SettleInput,
} from '../../machines/types.js'
import { DebugHub } from '../../src/debug/hub.js'
import type { ActorView } from '../../src/debug/view.js'
import { entry, immediate, ok, retry, scripted, settle } from '../support/machine.js'

/** A traffic light that counts its changes in `stats`, as the ackstate machines do. */
const light = setup({
  types: {
    context: {} as { stats: { changes: number } },
    events: {} as { type: 'timer' } | { type: 'poke' },
  },
}).createMachine({
  id: 'light',
  context: { stats: { changes: 0 } },
  initial: 'green',
  on: { poke: { actions: assign({ stats: ({ context }) => ({ changes: context.stats.changes + 100 }) }) } },
  states: {
    green: { on: { timer: 'yellow' } },
    yellow: { on: { timer: 'red' } },
    red: { on: { timer: 'green' } },
  },
})

const steps = (view: ActorView | undefined) =>
  view?.transitions.map((t) => `${t.from} -(${t.trigger})-> ${t.to}`)

test('records each state change with its event and keeps only the last N', () => {
  const hub = new DebugHub({ historySize: 3 })
  const actor = createActor(light, { id: 'light-1', inspect: hub.observe }).start()
  for (let i = 0; i < 4; i++) actor.send({ type: 'timer' })
  actor.send({ type: 'poke' }) // no state change: no transition, but the counters move

  const view = hub.actor('light-1')!
  assert.deepEqual(steps(view), ['yellow -(timer)-> red', 'red -(timer)-> green', 'green -(timer)-> yellow'])
  assert.ok(view.transitions.every((t) => typeof t.at === 'number' && t.at <= Date.now()))
  assert.deepEqual(
    { ...view, transitions: view.transitions.length },
    {
      id: 'light-1',
      machine: 'light',
      chart: null, // not a machine `ackstate visualize` knows
      state: 'yellow',
      active: ['light', 'light.yellow'],
      status: 'active',
      sessions: 1,
      counters: { changes: 100 },
      lastError: null,
      transitions: 3,
      batch: null,
    },
  )
  assert.deepEqual(
    hub.state().actors.map((a) => a.id),
    ['light-1'],
  )
})

test('an actor restarted under the same id keeps its history and counts its sessions', () => {
  const hub = new DebugHub()
  const first = createActor(light, { id: 'light', inspect: hub.observe }).start()
  first.send({ type: 'timer' })
  first.stop()
  createActor(light, { id: 'light', inspect: hub.observe }).start()

  const view = hub.actor('light')!
  assert.deepEqual(
    { sessions: view.sessions, state: view.state, steps: steps(view) },
    {
      sessions: 2,
      state: 'green',
      steps: ['null -(xstate.init)-> green', 'green -(timer)-> yellow', 'null -(xstate.init)-> green'],
    },
  )
})

test("shows a consumer's batch in flight: ids, attempts, a short payload preview, then each outcome", async () => {
  const hub = new DebugHub()
  const read = scripted<ReadInput, Entry[]>()
  const processed = scripted<ProcessInput, Outcome[]>()
  const acked = scripted<SettleInput, void>()
  const machine = consumerMachine.provide({
    actors: {
      startConsumer: immediate<ConsumerRef, void>(undefined).logic,
      reserveCapacity: immediate<{ name: string; count: number }, number>(10).logic,
      claimDue: immediate<ClaimInput, Entry[]>([]).logic,
      readBatch: read.logic,
      processBatch: processed.logic,
      deadLetter: immediate<SettleInput, void>(undefined).logic,
      ackMessages: acked.logic,
      recordRetries: immediate<SettleInput, void>(undefined).logic,
      closeConsumer: immediate<ConsumerRef, void>(undefined).logic,
    },
  })
  const input = {
    name: 'orders',
    stream: 'orders',
    group: 'g',
    consumer: 'c1',
    batchSize: 10,
    blockMs: 100,
    maxAttempts: 5,
  }
  const actor = createActor(machine, { id: 'consumer-orders', input, inspect: hub.observe }).start()
  await settle()
  assert.equal(hub.actor('consumer-orders')!.state, 'reading.fetching')

  const batch = [
    entry('1-0', { payload: `{"note":"${'x'.repeat(200)}"}` }),
    entry('2-0', { attempt: 3, payload: null }),
  ]
  read.next(batch)
  await settle()
  const processing = hub.actor('consumer-orders')!
  assert.deepEqual(
    {
      state: processing.state,
      active: processing.active,
      chart: processing.chart,
      last: processing.transitions.at(-1)!.trigger,
      batch: processing.batch,
    },
    {
      state: 'processing',
      active: ['consumer', 'consumer.processing'],
      chart: '/debug/charts/consumer.svg',
      last: 'done readBatch',
      batch: {
        size: 2,
        entries: [
          {
            entryId: '1-0',
            id: 'm-1-0',
            attempt: 1,
            status: 'in flight',
            preview: `{"note":"${'x'.repeat(71)}`,
          },
          { entryId: '2-0', id: 'm-2-0', attempt: 3, status: 'in flight', preview: null },
        ],
      },
    },
  )

  processed.next([ok(batch[0]!), retry(batch[1]!)])
  await settle()
  const acking = hub.actor('consumer-orders')!
  assert.deepEqual(
    {
      state: acking.state,
      outcomes: acking.batch!.entries.map((e) => e.status),
      counters: acking.counters,
    },
    {
      state: 'acking',
      outcomes: ['ok', 'retry'],
      counters: { batches: 1, read: 2, handled: 1, retried: 1, deadLettered: 0, acked: 0, brokerErrors: 0 },
    },
  )
  acked.next()
  await settle()
  assert.deepEqual(hub.actor('consumer-orders')!.batch, { size: 0, entries: [] })
  actor.stop()
})

test('coalesces pushes to live clients, and computes nothing while none is connected', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] })
  const hub = new DebugHub({ pushIntervalMs: 100 })
  const actor = createActor(light, { id: 'light', inspect: hub.observe }).start()
  actor.send({ type: 'timer' })
  t.mock.timers.tick(1_000)

  const pushes: string[][] = []
  let ended = 0
  hub.subscribe({ push: (views) => pushes.push(views.map((v) => `${v.id}:${v.state}`)), end: () => ended++ })
  assert.deepEqual(pushes, [], 'changes from before the client connected are not pushed')

  for (let i = 0; i < 5; i++) actor.send({ type: 'timer' })
  t.mock.timers.tick(99)
  assert.deepEqual(pushes, [])
  t.mock.timers.tick(1)
  assert.deepEqual(pushes, [['light:green']], 'five changes, one push with the latest view')

  actor.send({ type: 'timer' })
  hub.close()
  assert.deepEqual({ pushes, ended }, { pushes: [['light:green'], ['light:yellow']], ended: 1 })
})
