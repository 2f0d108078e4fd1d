import { and, assign, enqueueActions, fromPromise, setup } from 'xstate'
import {
  BROKER_FULL,
  BROKER_UNAVAILABLE,
  GROUP_MISSING,
  errorCode,
  type ConsumerInput,
  type ClaimInput,
  type ConsumerRef,
  type Entry,
  type Outcome,
  type ProcessInput,
  type ReadInput,
  type SettleInput,
} from './types.js'

/**
 * One consumer of one stream in one group. Pure: every side effect is an actor or action that
 * src/ provides with `.provide()`; the stubs below only fix the types and fail loudly if unprovided.
 *
 * The machine steps once per batch: reserve pool capacity → XREADGROUP → one pool run → settle
 * (dead-letter, XACK, record retries). A failed message is never acked; it stays in the PEL.
 */

/** Counters a consumer keeps about its own work; shown by the debug view and the shutdown log. */
export interface ConsumerStats {
  batches: number
  read: number
  handled: number
  retried: number
  deadLettered: number
  acked: number
  brokerErrors: number
}

export interface ConsumerContext extends ConsumerInput {
  /** Messages this consumer may still read: granted by the pool, bounded by its free capacity. */
  reserved: number
  /** The batch in flight (read, not yet settled). */
  batch: Entry[]
  /** Results of the batch in flight, waiting to be settled. */
  outcomes: Outcome[]
  /** Set once a shutdown was requested: finish the batch in flight, then stop. */
  draining: boolean
  /** Where to resume once the broker is back. */
  resumeAt: 'starting' | 'reading' | 'processing' | 'deadLettering' | 'acking' | 'retrying'
  /** Consecutive broker failures; drives the reconnect backoff. */
  brokerFailures: number
  stats: ConsumerStats
  lastError: { code: string; message: string } | null
}

export type ConsumerEvent =
  /** Stop reading at once, finish and settle the batch in flight, then stop. */
  | { type: 'shutdown.request' }
  /** The broker connection is usable again; retry now instead of waiting for the backoff. */
  | { type: 'broker.ready' }
  /** An invoked actor failed (handled per state; unhandled ones crash the consumer). */
  | { type: `xstate.error.actor.${string}`; error: unknown }

/** What a stopped consumer reports: its counters and the entries it could not settle. */
export interface ConsumerOutput {
  stats: ConsumerStats
  unsettled: string[]
}

const notProvided = (name: string) => (): Promise<never> =>
  Promise.reject(
    new Error(`consumerMachine: actor "${name}" was not provided; use consumerMachine.provide()`),
  )

const toError = (error: unknown) => ({
  code: errorCode(error) ?? 'ACK_ERR_UNKNOWN',
  message: error instanceof Error ? error.message : String(error),
})

/** A failed message on its last allowed attempt. */
const isLastAttempt = (o: Outcome, maxAttempts: number): o is Extract<Outcome, { status: 'retry' }> =>
  o.status === 'retry' && o.attempt >= maxAttempts

/** A message that failed on its last allowed attempt is dead, not retried. */
export function giveUpAfter(outcomes: Outcome[], maxAttempts: number): Outcome[] {
  return outcomes.map((o) => (isLastAttempt(o, maxAttempts) ? { ...o, status: 'dead' } : o))
}

const byStatus = (outcomes: Outcome[], status: Outcome['status']) =>
  outcomes.filter((o) => o.status === status)

const ref = (c: ConsumerContext): ConsumerRef => ({
  name: c.name,
  stream: c.stream,
  group: c.group,
  consumer: c.consumer,
})

const settleInput = (c: ConsumerContext, outcomes: Outcome[]): SettleInput => {
  const byEntry = new Map(c.batch.map((e) => [e.entryId, e]))
  const entries = outcomes.map((o) => byEntry.get(o.entryId)).filter((e): e is Entry => e !== undefined)
  return { ...ref(c), outcomes, entries }
}

const consumerSetup = setup({
  types: {
    context: {} as ConsumerContext,
    events: {} as ConsumerEvent,
    input: {} as ConsumerInput,
    output: {} as ConsumerOutput,
  },
  actors: {
    /** Opens the consumer's own blocking connection and creates its group when missing. */
    startConsumer: fromPromise<void, ConsumerRef>(notProvided('startConsumer')),
    /** Waits until the handler pool can take more messages; resolves with how many (≤ input). */
    reserveCapacity: fromPromise<number, { name: string; count: number }>(notProvided('reserveCapacity')),
    /**
     * Claims pending entries that are due again (a failed message whose backoff has passed, an orphan
     * of a dead consumer); resolves with at most `count`, often none.
     */
    claimDue: fromPromise<Entry[], ClaimInput>(notProvided('claimDue')),
    /** XREADGROUP … COUNT n BLOCK ms STREAMS s > */
    readBatch: fromPromise<Entry[], ReadInput>(notProvided('readBatch')),
    /**
     * Runs the batch in the handler's worker pool (src/ may have started that run as the batch was
     * read: this step then waits for it); one outcome per entry, never rejects for a handler error.
     */
    processBatch: fromPromise<Outcome[], ProcessInput>(notProvided('processBatch')),
    /** Writes dead messages to the dead-letter stream. */
    deadLetter: fromPromise<void, SettleInput>(notProvided('deadLetter')),
    /** XACK the ok and dead-lettered entries (one pipelined call). */
    ackMessages: fromPromise<void, SettleInput>(notProvided('ackMessages')),
    /** Records failed attempts; the entries stay in the PEL. */
    recordRetries: fromPromise<void, SettleInput>(notProvided('recordRetries')),
    /** Closes the consumer's own connection. */
    closeConsumer: fromPromise<void, ConsumerRef>(notProvided('closeConsumer')),
  },
  actions: {
    /** Logs why the broker refused (the first failure of a run of them only). Provided by src/. */
    reportBrokerDown: (_, _params: { name: string; error: unknown; failures: number }) => {},
    /** Takes pool capacity the guard `hasRoomFor` found free. A side effect on the pool gate, provided by src/. */
    takeCapacity: (_, _params: { name: string; count: number }) => {},
    /** Gives pool capacity back. A side effect on the pool gate, provided by src/. */
    releaseCapacity: (_, _params: { name: string; count: number }) => {},
    countAcked: assign({
      stats: ({ context }) => ({
        ...context.stats,
        acked: context.stats.acked + context.outcomes.filter((o) => o.status !== 'retry').length,
      }),
    }),
    clearBatch: assign({ batch: [], outcomes: [] }),
    /**
     * Keeps a processed batch's outcomes (a retry on its last allowed attempt is dead) and counts it;
     * the batch's pool capacity was released with it.
     */
    takeOutcomes: assign(({ context }, params: { outcomes: Outcome[] }) => {
      const outcomes = giveUpAfter(params.outcomes, context.maxAttempts)
      return {
        reserved: 0,
        outcomes,
        stats: {
          ...context.stats,
          batches: context.stats.batches + 1,
          read: context.stats.read + context.batch.length,
          handled: context.stats.handled + byStatus(outcomes, 'ok').length,
          retried: context.stats.retried + byStatus(outcomes, 'retry').length,
        },
      }
    }),
    /** Keeps what was read as the batch in flight; its share of the reservation stays held. */
    takeBatch: assign((_, params: { entries: Entry[] }) => ({
      batch: params.entries,
      reserved: params.entries.length,
      brokerFailures: 0,
    })),
  },
  guards: {
    /**
     * Whether the claim step has anything to do now (a retry's backoff may have passed, a failover
     * check is due). Provided by src/ from its schedule; the stub always claims, which is correct,
     * only slower: the step is a round trip through an actor on every batch.
     */
    claimMayBeDue: (_: { context: ConsumerContext }) => true,
    /**
     * Whether the consumer's pool has room for a whole batch (`batchSize` messages) now. Provided by
     * src/; the stub says no.
     */
    hasRoomFor: (_: { context: ConsumerContext }) => false,
    hasEntries: (_, params: { entries: Entry[] }) => params.entries.length > 0,
    /** Whether a processed batch has a message to dead-letter (see giveUpAfter). */
    givesUpOnAny: (_, params: { outcomes: Outcome[]; maxAttempts: number }) =>
      params.outcomes.some((o) => o.status === 'dead' || isLastAttempt(o, params.maxAttempts)),
    hasRetries: ({ context }) => context.outcomes.some((o) => o.status === 'retry'),
    isDraining: ({ context }) => context.draining,
    /** Wait and retry: the broker is unreachable, or out of memory and refusing writes. */
    isBrokerDown: ({ event }) => {
      const code = errorCode((event as { error?: unknown }).error)
      return code === BROKER_UNAVAILABLE || code === BROKER_FULL
    },
    isGroupMissing: ({ event }) => errorCode((event as { error?: unknown }).error) === GROUP_MISSING,
    resumesAt: ({ context }, params: { state: ConsumerContext['resumeAt'] }) =>
      context.resumeAt === params.state,
  },
  delays: {
    /** Reconnect backoff: 100 ms doubling to 5 s. */
    reconnectDelay: ({ context }) => Math.min(5_000, 100 * 2 ** Math.min(context.brokerFailures, 6)),
  },
})

/** Gives back all the pool capacity the consumer still holds (a read's, or a batch's), and forgets it. */
const releaseReservation = consumerSetup.createAction(
  enqueueActions(({ context, enqueue }) => {
    enqueue({ type: 'releaseCapacity', params: { name: context.name, count: context.reserved } })
    enqueue.assign({ reserved: 0 })
  }),
)

/** Takes a whole batch's pool capacity for the next read, where `hasRoomFor` found it free. */
const takeBatchCapacity = consumerSetup.createAction(
  enqueueActions(({ context, enqueue }) => {
    enqueue({ type: 'takeCapacity', params: { name: context.name, count: context.batchSize } })
    enqueue.assign({ reserved: context.batchSize })
  }),
)

export const consumerMachine = consumerSetup.createMachine({
  id: 'consumer',
  context: ({ input }) => ({
    ...input,
    reserved: 0,
    batch: [],
    outcomes: [],
    draining: false,
    resumeAt: 'starting',
    brokerFailures: 0,
    stats: { batches: 0, read: 0, handled: 0, retried: 0, deadLettered: 0, acked: 0, brokerErrors: 0 },
    lastError: null,
  }),
  initial: 'starting',
  output: ({ context }) => ({
    stats: context.stats,
    unsettled: context.batch.map((e) => e.entryId),
  }),
  states: {
    starting: {
      invoke: {
        src: 'startConsumer',
        input: ({ context }) => ref(context),
        onDone: { target: 'reading', actions: assign({ brokerFailures: 0 }) },
        onError: {
          guard: 'isBrokerDown',
          target: 'disconnected',
          actions: assign({ resumeAt: 'starting' }),
        },
      },
      on: { 'shutdown.request': 'draining' },
    },

    reading: {
      initial: 'reserving',
      on: {
        // A failed claim or read (from any substate): wait for the broker, or recreate a vanished
        // group. Any other error is left unhandled, so the actor crashes and the supervisor decides.
        'xstate.error.actor.*': [
          {
            guard: 'isBrokerDown',
            target: 'disconnected',
            actions: [releaseReservation, assign({ resumeAt: 'reading' })],
          },
          {
            guard: 'isGroupMissing',
            target: 'starting',
            actions: [releaseReservation, assign({ lastError: ({ event }) => toError(event.error) })],
          },
        ],
        // Stop reading at once: leaving this state aborts the blocked XREADGROUP.
        'shutdown.request': {
          target: 'draining',
          actions: [releaseReservation],
        },
      },
      states: {
        /**
         * Takes pool capacity for the next read: at once while the pool has room for a whole batch
         * (no actor, no extra step of the machine), else waits for it in `waitingForCapacity`. Then
         * claims due retries first when some may be due, else reads.
         */
        reserving: {
          always: [
            // claimMayBeDue first: on the usual turn nothing is due, and the pool is asked once, below.
            { guard: and(['claimMayBeDue', 'hasRoomFor']), target: 'claiming', actions: takeBatchCapacity },
            { guard: 'hasRoomFor', target: 'fetching', actions: takeBatchCapacity },
            { target: 'waitingForCapacity' },
          ],
        },
        waitingForCapacity: {
          invoke: {
            src: 'reserveCapacity',
            input: ({ context }) => ({ name: context.name, count: context.batchSize }),
            onDone: [
              {
                guard: 'claimMayBeDue',
                target: 'claiming',
                actions: assign({ reserved: ({ event }) => event.output }),
              },
              { target: 'fetching', actions: assign({ reserved: ({ event }) => event.output }) },
            ],
          },
        },
        claiming: {
          invoke: {
            src: 'claimDue',
            input: ({ context }) => ({ ...ref(context), count: context.reserved }),
            onDone: [
              {
                guard: { type: 'hasEntries', params: ({ event }) => ({ entries: event.output }) },
                target: '#consumer.processing',
                actions: [
                  {
                    type: 'releaseCapacity',
                    params: ({ context, event }) => ({
                      name: context.name,
                      count: context.reserved - event.output.length,
                    }),
                  },
                  { type: 'takeBatch', params: ({ event }) => ({ entries: event.output }) },
                ],
              },
              { target: 'fetching' },
            ],
          },
        },
        fetching: {
          invoke: {
            src: 'readBatch',
            input: ({ context }) => ({ ...ref(context), count: context.reserved, blockMs: context.blockMs }),
            onDone: [
              {
                guard: { type: 'hasEntries', params: ({ event }) => ({ entries: event.output }) },
                target: '#consumer.processing',
                actions: [
                  {
                    type: 'releaseCapacity',
                    params: ({ context, event }) => ({
                      name: context.name,
                      count: context.reserved - event.output.length,
                    }),
                  },
                  { type: 'takeBatch', params: ({ event }) => ({ entries: event.output }) },
                ],
              },
              // Nothing arrived within blockMs: look for due retries again, then block again.
              { target: 'claiming', actions: assign({ brokerFailures: 0 }) },
            ],
          },
        },
      },
    },

    processing: {
      invoke: {
        src: 'processBatch',
        input: ({ context }) => ({ ...ref(context), entries: context.batch }),
        // Dead letters first, then acks (then retries). Not releaseReservation: an action made by
        // createAction is typed for the machine's own events, not for this done event.
        onDone: [
          {
            guard: {
              type: 'givesUpOnAny',
              params: ({ context, event }) => ({ outcomes: event.output, maxAttempts: context.maxAttempts }),
            },
            target: 'deadLettering',
            actions: [
              {
                type: 'releaseCapacity',
                params: ({ context }) => ({ name: context.name, count: context.reserved }),
              },
              { type: 'takeOutcomes', params: ({ event }) => ({ outcomes: event.output }) },
            ],
          },
          {
            target: 'acking',
            actions: [
              {
                type: 'releaseCapacity',
                params: ({ context }) => ({ name: context.name, count: context.reserved }),
              },
              { type: 'takeOutcomes', params: ({ event }) => ({ outcomes: event.output }) },
            ],
          },
        ],
        // The dedupe claim was refused before any handler ran: run the batch again once Redis is back.
        onError: {
          guard: 'isBrokerDown',
          target: 'disconnected',
          actions: assign({ resumeAt: 'processing' }),
        },
      },
      on: { 'shutdown.request': { actions: assign({ draining: true }) } },
    },

    deadLettering: {
      invoke: {
        src: 'deadLetter',
        input: ({ context }) => settleInput(context, byStatus(context.outcomes, 'dead')),
        onDone: {
          target: 'acking',
          actions: assign({
            stats: ({ context }) => ({
              ...context.stats,
              deadLettered: context.stats.deadLettered + byStatus(context.outcomes, 'dead').length,
            }),
          }),
        },
        onError: {
          guard: 'isBrokerDown',
          target: 'disconnected',
          actions: assign({ resumeAt: 'deadLettering' }),
        },
      },
      on: { 'shutdown.request': { actions: assign({ draining: true }) } },
    },

    acking: {
      invoke: {
        src: 'ackMessages',
        input: ({ context }) =>
          settleInput(
            context,
            context.outcomes.filter((o) => o.status !== 'retry'),
          ),
        onDone: [
          { guard: 'hasRetries', target: 'retrying', actions: 'countAcked' },
          { guard: 'isDraining', target: 'draining', actions: ['countAcked', 'clearBatch'] },
          { target: 'reading', actions: ['countAcked', 'clearBatch'] },
        ],
        onError: {
          guard: 'isBrokerDown',
          target: 'disconnected',
          actions: assign({ resumeAt: 'acking' }),
        },
      },
      on: { 'shutdown.request': { actions: assign({ draining: true }) } },
    },

    /** Failed messages are left in the PEL; this records the attempt so the retry can be scheduled. */
    retrying: {
      invoke: {
        src: 'recordRetries',
        input: ({ context }) => settleInput(context, byStatus(context.outcomes, 'retry')),
        onDone: [
          { guard: 'isDraining', target: 'draining', actions: 'clearBatch' },
          { target: 'reading', actions: 'clearBatch' },
        ],
        onError: {
          guard: 'isBrokerDown',
          target: 'disconnected',
          actions: assign({ resumeAt: 'retrying' }),
        },
      },
      on: { 'shutdown.request': { actions: assign({ draining: true }) } },
    },

    /**
     * The broker is unreachable. Results already computed are kept and settled when it returns;
     * nothing new is read. A shutdown from here leaves the unsettled batch in the PEL.
     */
    disconnected: {
      entry: [
        assign({
          brokerFailures: ({ context }) => context.brokerFailures + 1,
          stats: ({ context }) => ({ ...context.stats, brokerErrors: context.stats.brokerErrors + 1 }),
        }),
        {
          type: 'reportBrokerDown',
          params: ({ context, event }) => ({
            name: context.name,
            error: (event as { error?: unknown }).error,
            failures: context.brokerFailures,
          }),
        },
      ],
      after: { reconnectDelay: { target: 'resuming' } },
      on: {
        'broker.ready': 'resuming',
        // Only a batch waiting to be processed still holds its reservation.
        'shutdown.request': {
          target: 'draining',
          actions: [releaseReservation],
        },
      },
    },

    resuming: {
      always: [
        { guard: { type: 'resumesAt', params: { state: 'starting' } }, target: 'starting' },
        { guard: { type: 'resumesAt', params: { state: 'processing' } }, target: 'processing' },
        { guard: { type: 'resumesAt', params: { state: 'deadLettering' } }, target: 'deadLettering' },
        { guard: { type: 'resumesAt', params: { state: 'acking' } }, target: 'acking' },
        { guard: { type: 'resumesAt', params: { state: 'retrying' } }, target: 'retrying' },
        { target: 'reading' },
      ],
    },

    draining: {
      invoke: {
        src: 'closeConsumer',
        input: ({ context }) => ref(context),
        onDone: 'stopped',
        onError: 'stopped',
      },
    },

    stopped: { type: 'final' },
  },
})

export type ConsumerMachine = typeof consumerMachine
