import { assign, cancel, enqueueActions, fromPromise, raise, sendTo, setup, stopChild } from 'xstate'
import { consumerMachine } from './consumerMachine.js'
import { delayMachine } from './delayMachine.js'
import { reclaimerMachine } from './reclaimerMachine.js'
import { republisherMachine } from './republisherMachine.js'
import type { ConsumerInput, DelayInput, ReclaimInput, RepublishInput } from './types.js'

/**
 * The root actor. It opens the shared resources (connections, pools), spawns one consumer actor per
 * configured consumer and the reclaimer, restarts a crashed child at most `maxRestarts` times within
 * `restartWindowMs` (a crash leaves the count once the window has passed), and on
 * shutdown drains every child before closing the resources. XState has no restart strategy of its own: a crashed
 * child reports `xstate.error.actor.<id>` and is replaced by a new actor under the same id.
 */

export interface SupervisorInput {
  consumers: ConsumerInput[]
  /** Settings of the reclaimer (heartbeat and orphan reclaim). */
  reclaim: ReclaimInput
  /** Settings of the republisher; null without a store (nothing to re-send from). */
  republish: RepublishInput | null
  /** Settings of the delay scheduler; null without a store (delays live in PostgreSQL). */
  delay: DelayInput | null
  /** Restarts allowed per child within `restartWindowMs`; one more crash stops the daemon (exit 1). */
  maxRestarts: number
  /** How long a restart counts against `maxRestarts`, in ms: a crash a day never exhausts the budget. */
  restartWindowMs: number
  /** Time allowed for the drain, in ms; the rest of the shutdown budget is for closing. */
  drainTimeoutMs: number
}

export interface SupervisorContext extends SupervisorInput {
  /** Restarts per child since the start (monotonic: the metrics count them). */
  restarts: Record<string, number>
  /** Restarts per child within the last `restartWindowMs`: what the budget and the backoff use. */
  recentRestarts: Record<string, number>
  /** Ids of the child actors alive now. */
  running: string[]
  /**
   * Consumers draining for a reload, by name: the settings to start again with once the old actor
   * stopped (a changed consumer), or null (a removed one). Old and new never run side by side under
   * one id, and the old one acks its batch before the new one reads.
   */
  replacing: Record<string, ConsumerInput | null>
  reloads: number
  exitCode: number
  timedOut: boolean
  failure: { consumer: string; message: string } | null
}

export type SupervisorEvent =
  /** SIGTERM/SIGINT: drain every consumer, close resources, stop. Repeats are ignored. */
  | { type: 'shutdown.request' }
  /**
   * SIGHUP: the new consumer list (already validated, its pools ready). Unchanged consumers keep
   * running; removed ones drain; added ones start; `changed` ones drain and start again.
   */
  | { type: 'reload.request'; consumers: ConsumerInput[]; changed: string[] }
  /** Internal: spawn a child again after its restart delay. */
  | { type: 'child.restart'; id: string }
  /** Internal: a restart of the child is older than the restart window and no longer counts. */
  | { type: 'restart.expired'; id: string }
  /** A child actor reached its final state. */
  | { type: `xstate.done.actor.${string}`; output?: unknown }
  /** A child actor crashed. */
  | { type: `xstate.error.actor.${string}`; error: unknown }

export interface SupervisorOutput {
  exitCode: number
  timedOut: boolean
  failure: { consumer: string; message: string } | null
}

/** Child id (and systemId) of a consumer actor. */
export const consumerId = (name: string) => `consumer-${name}`

/** Child id (and systemId) of the reclaimer. */
export const RECLAIMER_ID = 'reclaimer'
/** Child id (and systemId) of the republisher. */
export const REPUBLISHER_ID = 'republisher'
/** Child id (and systemId) of the delay scheduler. */
export const DELAY_SCHEDULER_ID = 'delay-scheduler'

const ERROR_PREFIX = 'xstate.error.actor.'
const DONE_PREFIX = 'xstate.done.actor.'

/** Child id from a child's error/done event type. */
const childFromEvent = (type: string) =>
  type.startsWith(ERROR_PREFIX)
    ? type.slice(ERROR_PREFIX.length)
    : type.startsWith(DONE_PREFIX)
      ? type.slice(DONE_PREFIX.length)
      : ''

/** What logs and the failure call a child: the consumer's configured name, or the child id. */
const nameOf = (id: string) => (id.startsWith('consumer-') ? id.slice('consumer-'.length) : id)

const message = (error: unknown) => (error instanceof Error ? error.message : String(error))

const notProvided = (name: string) => (): Promise<never> =>
  Promise.reject(
    new Error(`supervisorMachine: actor "${name}" was not provided; use supervisorMachine.provide()`),
  )

export const supervisorMachine = setup({
  types: {
    context: {} as SupervisorContext,
    events: {} as SupervisorEvent,
    input: {} as SupervisorInput,
    output: {} as SupervisorOutput,
  },
  actors: {
    consumer: consumerMachine,
    reclaimer: reclaimerMachine,
    republisher: republisherMachine,
    delayScheduler: delayMachine,
    /** Connects to the broker and starts the handler pools. */
    openResources: fromPromise<void, void>(notProvided('openResources')),
    /** Closes pools and connections; `force` when the drain timed out. */
    closeResources: fromPromise<void, { force: boolean }>(notProvided('closeResources')),
  },
  actions: {
    /** Logs a consumer crash and whether it will be restarted. Provided by src/. */
    reportCrash: (_, _params: { name: string; error: unknown; restart: boolean; delayMs: number }) => {},
    /** Switches the resources of a consumer (config, pool) to what a reload staged. Provided by src/. */
    activateConsumer: (_, _params: { name: string }) => {},
    /** Logs the entries left unsettled when the drain timed out. Provided by src/. */
    reportUnfinished: () => {},
    forgetChild: assign({
      running: ({ context, event }) => context.running.filter((id) => id !== childFromEvent(event.type)),
    }),
  },
  guards: {
    canRestart: ({ context, event }) =>
      (context.recentRestarts[childFromEvent(event.type)] ?? 0) < context.maxRestarts,
    allStopped: ({ context }) => context.running.length === 0,
  },
  delays: {
    drainTimeout: ({ context }) => context.drainTimeoutMs,
  },
}).createMachine({
  id: 'supervisor',
  context: ({ input }) => ({
    ...input,
    restarts: {},
    recentRestarts: {},
    running: [],
    replacing: {},
    reloads: 0,
    exitCode: 0,
    timedOut: false,
    failure: null,
  }),
  initial: 'starting',
  on: {
    // The window slides: each restart stops counting once it is older than restartWindowMs.
    'restart.expired': {
      actions: assign({
        recentRestarts: ({ context, event }) => ({
          ...context.recentRestarts,
          [event.id]: Math.max(0, (context.recentRestarts[event.id] ?? 0) - 1),
        }),
      }),
    },
  },
  output: ({ context }) => ({
    exitCode: context.exitCode,
    timedOut: context.timedOut,
    failure: context.failure,
  }),
  states: {
    starting: {
      invoke: {
        src: 'openResources',
        onDone: 'running',
        onError: {
          target: 'closing',
          actions: assign({
            exitCode: 1,
            failure: ({ event }) => ({ consumer: '', message: message(event.error) }),
          }),
        },
      },
      on: { 'shutdown.request': { target: 'closing' } },
    },

    running: {
      entry: enqueueActions(({ context, enqueue }) => {
        // A child's id is also its systemId; a restart reuses both.
        for (const c of context.consumers) {
          enqueue.spawnChild('consumer', { id: consumerId(c.name), systemId: consumerId(c.name), input: c })
        }
        enqueue.spawnChild('reclaimer', { id: RECLAIMER_ID, systemId: RECLAIMER_ID, input: context.reclaim })
        const running = [...context.consumers.map((c) => consumerId(c.name)), RECLAIMER_ID]
        if (context.republish) {
          enqueue.spawnChild('republisher', {
            id: REPUBLISHER_ID,
            systemId: REPUBLISHER_ID,
            input: context.republish,
          })
          running.push(REPUBLISHER_ID)
        }
        if (context.delay) {
          enqueue.spawnChild('delayScheduler', {
            id: DELAY_SCHEDULER_ID,
            systemId: DELAY_SCHEDULER_ID,
            input: context.delay,
          })
          running.push(DELAY_SCHEDULER_ID)
        }
        enqueue.assign({ running })
      }),
      on: {
        'shutdown.request': 'draining',
        'xstate.done.actor.*': {
          actions: enqueueActions(({ context, event, enqueue }) => {
            enqueue('forgetChild')
            const name = nameOf(childFromEvent(event.type))
            if (!(name in context.replacing)) return
            const { [name]: next, ...rest } = context.replacing
            enqueue.assign({ replacing: rest })
            if (!next) return
            // The old actor acked its last batch and stopped: its replacement takes over.
            const id = consumerId(name)
            enqueue({ type: 'activateConsumer', params: { name } })
            enqueue.spawnChild('consumer', { id, systemId: id, input: next })
            enqueue.assign({ running: [...context.running.filter((r) => r !== id), id] })
          }),
        },
        'reload.request': {
          actions: enqueueActions(({ context, event, enqueue }) => {
            const next = new Map(event.consumers.map((c) => [c.name, c]))
            const replacing = { ...context.replacing }
            const running = [...context.running]
            for (const c of context.consumers) {
              const id = consumerId(c.name)
              const removed = !next.has(c.name)
              if (!removed && !event.changed.includes(c.name)) continue
              if (running.includes(id)) {
                replacing[c.name] = removed ? null : next.get(c.name)!
                enqueue(sendTo(id, { type: 'shutdown.request' }))
              } else if (removed) {
                // Crashed and waiting for its restart: there is nothing to drain, and no restart.
                enqueue(cancel(`restart-${id}`))
              }
            }
            for (const c of event.consumers) {
              if (context.consumers.some((old) => old.name === c.name)) continue
              const id = consumerId(c.name)
              enqueue({ type: 'activateConsumer', params: { name: c.name } })
              enqueue.spawnChild('consumer', { id, systemId: id, input: c })
              running.push(id)
            }
            enqueue.assign({ consumers: event.consumers, replacing, running, reloads: context.reloads + 1 })
          }),
        },
        'child.restart': {
          actions: enqueueActions(({ context, event, enqueue }) => {
            const { id } = event
            if (id === RECLAIMER_ID) {
              enqueue.spawnChild('reclaimer', { id, systemId: id, input: context.reclaim })
            } else if (id === REPUBLISHER_ID && context.republish) {
              enqueue.spawnChild('republisher', { id, systemId: id, input: context.republish })
            } else if (id === DELAY_SCHEDULER_ID && context.delay) {
              enqueue.spawnChild('delayScheduler', { id, systemId: id, input: context.delay })
            } else {
              const input = context.consumers.find((c) => consumerId(c.name) === id)
              if (!input) return
              // A reload may have changed it while it waited: start it with what is current.
              enqueue({ type: 'activateConsumer', params: { name: input.name } })
              enqueue.spawnChild('consumer', { id, systemId: id, input })
            }
            enqueue.assign({ running: [...context.running, id] })
          }),
        },
        'xstate.error.actor.*': [
          {
            guard: 'canRestart',
            actions: enqueueActions(({ context, event, enqueue }) => {
              const id = childFromEvent(event.type)
              const recent = (context.recentRestarts[id] ?? 0) + 1
              const delayMs = Math.min(30_000, 500 * 2 ** (recent - 1))
              const error = event.error
              enqueue({ type: 'reportCrash', params: { name: nameOf(id), error, restart: true, delayMs } })
              enqueue('forgetChild')
              enqueue.assign({
                restarts: { ...context.restarts, [id]: (context.restarts[id] ?? 0) + 1 },
                recentRestarts: { ...context.recentRestarts, [id]: recent },
              })
              enqueue(stopChild(id))
              enqueue(raise({ type: 'child.restart', id }, { delay: delayMs, id: `restart-${id}` }))
              enqueue(raise({ type: 'restart.expired', id }, { delay: context.restartWindowMs }))
            }),
          },
          {
            target: 'draining',
            actions: [
              'forgetChild',
              {
                type: 'reportCrash',
                params: ({ event }) => ({
                  name: nameOf(childFromEvent(event.type)),
                  error: event.error,
                  restart: false,
                  delayMs: 0,
                }),
              },
              assign({
                exitCode: 1,
                failure: ({ event }) => ({
                  consumer: nameOf(childFromEvent(event.type)),
                  message: message(event.error),
                }),
              }),
            ],
          },
        ],
      },
    },

    draining: {
      entry: enqueueActions(({ context, enqueue }) => {
        for (const id of context.running) enqueue(sendTo(id, { type: 'shutdown.request' }))
      }),
      always: { guard: 'allStopped', target: 'closing' },
      after: {
        drainTimeout: { target: 'closing', actions: ['reportUnfinished', assign({ timedOut: true })] },
      },
      on: {
        // A pending restart must not bring a consumer back during the drain.
        'child.restart': {},
        'xstate.done.actor.*': { actions: 'forgetChild' },
        'xstate.error.actor.*': { actions: 'forgetChild' },
      },
    },

    closing: {
      invoke: {
        src: 'closeResources',
        input: ({ context }) => ({ force: context.timedOut }),
        onDone: 'stopped',
        onError: { target: 'stopped', actions: assign({ exitCode: 1 }) },
      },
    },

    stopped: { type: 'final' },
  },
})

export type SupervisorMachine = typeof supervisorMachine
