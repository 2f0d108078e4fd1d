import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createActor, fromPromise, SimulatedClock, type InspectionEvent } from 'xstate'
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
import { stateName } from '../../src/inspect.js'
import { codedError, dead, entry, immediate, ok, retry, scripted, settle } from '../support/machine.js'

const input = {
  name: 'orders',
  stream: 'orders',
  group: 'billing',
  consumer: 'c1',
  batchSize: 10,
  blockMs: 100,
  maxAttempts: 3,
}

function harness(
  options: {
    capacity?: number
    claims?: Entry[][]
    claimMayBeDue?: () => boolean
    /** The pool's answer to "is there room for a whole batch now"; absent: the stub's "no". */
    room?: () => boolean
    /** XState's inspection observer, to watch the machine's steps. */
    inspect?: (ev: InspectionEvent) => void
    /** Dead letters answered by the test (next/fail) instead of at once. */
    scriptDeadLetters?: boolean
  } = {},
) {
  const claims = [...(options.claims ?? [])]
  const claimCalls: ClaimInput[] = []
  const claimDue = fromPromise<Entry[], ClaimInput>(async ({ input }) => {
    claimCalls.push(input)
    return claims.shift() ?? []
  })
  const read = scripted<ReadInput, Entry[]>()
  const processed = scripted<ProcessInput, Outcome[]>()
  const acked = scripted<SettleInput, void>()
  const deadLettered = options.scriptDeadLetters
    ? scripted<SettleInput, void>()
    : immediate<SettleInput, void>(undefined)
  const retried = immediate<SettleInput, void>(undefined)
  const started = immediate<ConsumerRef, void>(undefined)
  const closed = immediate<ConsumerRef, void>(undefined)
  const released: number[] = []
  const taken: number[] = []
  const reserveCalls: number[] = []
  const machine = consumerMachine.provide({
    actors: {
      startConsumer: started.logic,
      claimDue,
      reserveCapacity: fromPromise<number, { name: string; count: number }>(async ({ input: i }) => {
        reserveCalls.push(i.count)
        return options.capacity ?? input.batchSize
      }),
      readBatch: read.logic,
      processBatch: processed.logic,
      deadLetter: deadLettered.logic,
      ackMessages: acked.logic,
      recordRetries: retried.logic,
      closeConsumer: closed.logic,
    },
    actions: {
      releaseCapacity: (_, p) => void released.push(p.count),
      takeCapacity: (_, p) => void taken.push(p.count),
    },
    guards: {
      ...(options.claimMayBeDue ? { claimMayBeDue: options.claimMayBeDue } : {}),
      ...(options.room ? { hasRoomFor: options.room } : {}),
    },
  })
  const clock = new SimulatedClock()
  const actor = createActor(machine, { input, clock, inspect: options.inspect })
  const errors: unknown[] = []
  actor.subscribe({ error: (e) => errors.push(e) })
  actor.start()
  const state = () => stateName(actor.getSnapshot().value)
  return {
    actor,
    clock,
    claimCalls,
    read,
    processed,
    acked,
    deadLettered,
    retried,
    started,
    closed,
    released,
    taken,
    reserveCalls,
    errors,
    state,
  }
}

test('reads a batch, runs it, acks only what succeeded, then reads again', async () => {
  const h = harness()
  await settle()
  assert.equal(h.state(), 'reading.fetching')
  assert.deepEqual(h.read.calls[0], {
    name: 'orders',
    stream: 'orders',
    group: 'billing',
    consumer: 'c1',
    count: 10,
    blockMs: 100,
  })

  const batch = [entry('1-0'), entry('2-0'), entry('3-0')]
  h.read.next(batch)
  await settle()
  assert.equal(h.state(), 'processing')
  assert.deepEqual(h.released, [7], 'the unused part of the reservation is returned at once')
  assert.deepEqual(h.processed.calls[0]!.entries, batch)

  h.processed.next([ok(batch[0]!), retry(batch[1]!), ok(batch[2]!)])
  await settle()
  assert.equal(h.state(), 'acking')
  assert.deepEqual(
    h.acked.calls[0]!.outcomes.map((o) => o.entryId),
    ['1-0', '3-0'],
  )
  h.acked.next()
  await settle()
  assert.equal(h.state(), 'reading.fetching')
  assert.deepEqual(
    h.retried.calls[0]!.outcomes.map((o) => o.entryId),
    ['2-0'],
  )
  assert.deepEqual(h.actor.getSnapshot().context.stats, {
    batches: 1,
    read: 3,
    handled: 2,
    retried: 1,
    deadLettered: 0,
    acked: 2,
    brokerErrors: 0,
  })
  assert.deepEqual(h.actor.getSnapshot().context.batch, [])
})

test('does not ack while the batch is still processing', async () => {
  const h = harness()
  await settle()
  h.read.next([entry('1-0')])
  await settle()
  assert.equal(h.state(), 'processing')
  await settle(20)
  assert.equal(h.acked.calls.length, 0)
  h.processed.next([ok(entry('1-0'))])
  await settle()
  assert.equal(h.acked.calls.length, 1)
})

/** A batch of a permanent failure and a success, read and processed. */
async function deadAndOk(options: { scriptDeadLetters?: boolean } = {}) {
  const h = harness(options)
  await settle()
  const batch = [entry('1-0'), entry('2-0')]
  h.read.next(batch)
  await settle()
  h.processed.next([dead(batch[0]!), ok(batch[1]!)])
  await settle()
  return h
}

test('dead-letters permanent failures before acking them', async () => {
  const h = await deadAndOk()
  assert.deepEqual(
    h.deadLettered.calls[0]!.entries.map((e) => e.entryId),
    ['1-0'],
  )
  assert.equal(h.state(), 'acking')
  assert.deepEqual(
    h.acked.calls[0]!.outcomes.map((o) => o.entryId),
    ['1-0', '2-0'],
  )
})

/** The same batch, its dead letter answered by the test: the consumer is writing it. */
async function deadLettering() {
  const h = await deadAndOk({ scriptDeadLetters: true })
  assert.equal(h.state(), 'deadLettering')
  return { h, dlq: h.deadLettered as ReturnType<typeof scripted<SettleInput, void>> }
}

test('a dead letter the broker refuses leaves the whole batch unacked until it is written', async () => {
  const { h, dlq } = await deadLettering()
  dlq.fail(codedError('ACK_ERR_REDIS_UNAVAILABLE'))
  await settle()
  assert.equal(h.state(), 'disconnected')
  assert.equal(h.acked.calls.length, 0, 'nothing is acked before its dead letter is written')
  h.actor.send({ type: 'broker.ready' })
  await settle()
  assert.equal(h.state(), 'deadLettering', 'the dead letter is written again, not skipped')
  assert.deepEqual(
    dlq.calls[1]!.entries.map((e) => e.entryId),
    ['1-0'],
  )
  dlq.next(undefined)
  await settle()
  assert.equal(h.state(), 'acking')
  assert.deepEqual(
    h.acked.calls[0]!.outcomes.map((o) => o.entryId),
    ['1-0', '2-0'],
  )
  assert.equal(h.processed.calls.length, 1, 'the handler is not run again')
  assert.deepEqual(h.errors, [])
})

test('a dead letter that fails for another reason crashes the consumer without acking anything', async () => {
  const { h, dlq } = await deadLettering()
  dlq.fail(new Error('WRONGTYPE'))
  await settle()
  assert.equal(h.errors.length, 1, 'the supervisor gets the crash')
  assert.equal(h.acked.calls.length, 0, 'the entries stay in the PEL')
})

test('reads no more than the pool granted', async () => {
  const h = harness({ capacity: 3 })
  await settle()
  assert.equal(h.read.calls[0]!.count, 3)
})

test('an empty read reads again without processing', async () => {
  const h = harness()
  await settle()
  h.read.next([])
  await settle()
  assert.equal(h.state(), 'reading.fetching')
  assert.equal(h.read.calls.length, 2)
  assert.equal(h.processed.calls.length, 0)
})

test('shutdown while reading stops at once without reading more', async () => {
  const h = harness()
  await settle()
  h.actor.send({ type: 'shutdown.request' })
  await settle()
  assert.equal(h.actor.getSnapshot().status, 'done')
  assert.equal(h.read.calls.length, 1)
  assert.equal(h.closed.calls.length, 1)
  assert.deepEqual(h.released, [10], 'the reservation is returned')
})

test('shutdown while processing finishes and acks the batch, then stops', async () => {
  const h = harness()
  await settle()
  h.read.next([entry('1-0')])
  await settle()
  h.actor.send({ type: 'shutdown.request' })
  await settle()
  assert.equal(h.state(), 'processing')
  h.processed.next([ok(entry('1-0'))])
  await settle()
  h.acked.next()
  await settle()
  assert.equal(h.actor.getSnapshot().status, 'done')
  assert.equal(h.read.calls.length, 1, 'nothing is read after the shutdown request')
  assert.deepEqual(h.actor.getSnapshot().output, {
    stats: { batches: 1, read: 1, handled: 1, retried: 0, deadLettered: 0, acked: 1, brokerErrors: 0 },
    unsettled: [],
  })
})

test('a lost broker during a read waits out the backoff, then reads again', async () => {
  const h = harness()
  await settle()
  h.read.fail(codedError('ACK_ERR_REDIS_UNAVAILABLE'))
  await settle()
  assert.equal(h.state(), 'disconnected')
  h.clock.increment(150)
  await settle()
  assert.equal(h.state(), 'disconnected', 'the first backoff is 200 ms')
  h.clock.increment(60)
  await settle()
  assert.equal(h.state(), 'reading.fetching')
  assert.equal(h.read.calls.length, 2)
})

for (const code of ['ACK_ERR_REDIS_UNAVAILABLE', 'ACK_ERR_REDIS_OUT_OF_MEMORY']) {
  test(`${code} during the ack keeps the results and acks them when the broker is back`, async () => {
    const h = harness()
    await settle()
    h.read.next([entry('1-0')])
    await settle()
    h.processed.next([ok(entry('1-0'))])
    await settle()
    h.acked.fail(codedError(code))
    await settle()
    assert.equal(h.state(), 'disconnected')
    h.actor.send({ type: 'broker.ready' })
    await settle()
    assert.equal(h.state(), 'acking')
    assert.deepEqual(
      h.acked.calls[1]!.outcomes.map((o) => o.entryId),
      ['1-0'],
    )
    assert.equal(h.processed.calls.length, 1, 'the handler is not run again')
    assert.deepEqual(h.errors, [], 'the actor did not crash')
  })
}

test('a dedupe claim refused by the broker waits, then runs the batch, its reservation still held', async () => {
  const h = harness()
  await settle()
  h.read.next([entry('1-0')])
  await settle()
  h.processed.fail(codedError('ACK_ERR_REDIS_OUT_OF_MEMORY'))
  await settle()
  assert.equal(h.state(), 'disconnected')
  h.actor.send({ type: 'broker.ready' })
  await settle()
  assert.equal(h.state(), 'processing')
  assert.deepEqual(h.processed.calls[1]!.entries, [entry('1-0')])
  assert.deepEqual(h.released, [9], 'only the unused part was returned')
  h.actor.send({ type: 'shutdown.request' })
  h.processed.fail(codedError('ACK_ERR_REDIS_UNAVAILABLE'))
  await settle()
  h.actor.send({ type: 'shutdown.request' })
  await settle()
  assert.equal(h.actor.getSnapshot().status, 'done')
  assert.deepEqual(h.released, [9, 1], 'a shutdown while waiting returns the reservation')
  assert.deepEqual(h.errors, [])
})

test('a missing group sends the consumer back to create it', async () => {
  const h = harness()
  await settle()
  h.read.fail(codedError('ACK_ERR_GROUP_MISSING'))
  await settle()
  assert.equal(h.started.calls.length, 2)
  assert.equal(h.state(), 'reading.fetching')
})

test('an unexpected read error crashes the actor for the supervisor to handle', async () => {
  const h = harness()
  await settle()
  h.read.fail(codedError('ACK_ERR_REDIS_COMMAND', 'WRONGTYPE'))
  await settle()
  assert.equal(h.actor.getSnapshot().status, 'error')
  assert.equal((h.errors[0] as Error).message, 'WRONGTYPE')
})

test('due retries are claimed before new entries are read, within the reservation', async () => {
  const due = [entry('1-0', { attempt: 2 })]
  const h = harness({ capacity: 4, claims: [due] })
  await settle()
  assert.deepEqual(h.claimCalls[0], {
    name: 'orders',
    stream: 'orders',
    group: 'billing',
    consumer: 'c1',
    count: 4,
  })
  assert.equal(h.state(), 'processing')
  assert.equal(h.read.calls.length, 0, 'nothing new is read while due retries wait')
  assert.deepEqual(h.processed.calls[0]!.entries, due)
  assert.deepEqual(h.released, [3])
})

test('a message failing on its last attempt is dead-lettered, not retried', async () => {
  const h = harness({ claims: [[entry('1-0', { attempt: 3 }), entry('2-0', { attempt: 2 })]] })
  await settle()
  const [last, earlier] = h.processed.calls[0]!.entries
  h.processed.next([retry(last!), retry(earlier!)])
  await settle()
  assert.deepEqual(
    h.deadLettered.calls[0]!.outcomes.map((o) => [o.entryId, o.status, 'attempt' in o ? o.attempt : 0]),
    [['1-0', 'dead', 3]],
  )
  h.acked.next()
  await settle()
  assert.deepEqual(
    h.acked.calls[0]!.outcomes.map((o) => o.entryId),
    ['1-0'],
  )
  assert.deepEqual(
    h.retried.calls[0]!.outcomes.map((o) => o.entryId),
    ['2-0'],
  )
  assert.deepEqual(
    {
      retried: h.actor.getSnapshot().context.stats.retried,
      dead: h.actor.getSnapshot().context.stats.deadLettered,
    },
    { retried: 1, dead: 1 },
  )
})

test('an empty read looks for due retries again before blocking again', async () => {
  const h = harness()
  await settle()
  assert.equal(h.claimCalls.length, 1)
  h.read.next([])
  await settle()
  assert.equal(h.claimCalls.length, 2)
  assert.equal(h.read.calls.length, 2)
})

test('with no retry due, a turn of the loop goes from reserving straight to the read, past the claim step', async () => {
  let due = false
  const h = harness({ claimMayBeDue: () => due })
  await settle()
  assert.equal(h.state(), 'reading.fetching')
  assert.equal(h.claimCalls.length, 0, 'nothing was due: no claim step')

  const batch = [entry('1-0')]
  h.read.next(batch)
  await settle()
  h.processed.next([ok(batch[0]!)])
  await settle()
  due = true
  h.acked.next()
  await settle()
  assert.equal(h.claimCalls.length, 1, 'a retry came due: the next turn claims first')
  assert.equal(h.state(), 'reading.fetching')
})

test('a clean batch goes from processing to acking and straight back to the read: four machine steps', async () => {
  const steps: string[] = []
  const h = harness({
    room: () => true,
    claimMayBeDue: () => false,
    inspect: (ev) => {
      if (ev.type === '@xstate.microstep' && ev.actorRef === h.actor)
        steps.push(stateName((ev.snapshot as ReturnType<typeof h.actor.getSnapshot>).value))
    },
  })
  await settle()
  assert.equal(h.state(), 'reading.fetching')
  steps.length = 0
  const batch = [entry('1-0'), entry('2-0')]
  h.read.next(batch)
  await settle()
  h.processed.next(batch.map(ok))
  await settle()
  h.acked.next()
  await settle()
  // Taking the pool capacity and choosing between the claim and the read is one eventless step.
  assert.deepEqual(steps, ['processing', 'acking', 'reading.reserving', 'reading.fetching'])
})

test('while the pool has room for a whole batch, the loop takes it at once, with no wait step', async () => {
  let room = true
  const h = harness({ room: () => room })
  await settle()
  assert.equal(h.state(), 'reading.fetching')
  assert.deepEqual(h.taken, [10], 'a whole batch was taken from the pool')
  assert.deepEqual(h.reserveCalls, [], 'no wait for capacity')
  assert.equal(h.read.calls[0]!.count, 10)

  const batch = [entry('1-0'), entry('2-0')]
  h.read.next(batch)
  await settle()
  assert.deepEqual(h.released, [8], 'the unused part of the batch is returned at once')
  h.processed.next(batch.map(ok))
  await settle()
  assert.deepEqual(h.released, [8, 2], 'the batch returns its share once processed')

  room = false
  h.acked.next()
  await settle()
  assert.equal(h.state(), 'reading.fetching')
  assert.deepEqual(h.taken, [10], 'a full pool: nothing taken at once')
  assert.deepEqual(h.reserveCalls, [10], 'the loop waited for capacity instead')
})
