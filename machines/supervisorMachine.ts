import { assign, enqueueActions, fromPromise, raise, sendTo, setup, stopChild } from 'xstate'
import { consumerMachine } from './consumerMachine.js'
import type { ConsumerInput } from './types.js'

/**
 * The root actor. It opens the shared resources (connections, pools), spawns one consumer actor per
 * configured consumer, restarts a crashed consumer a bounded number of times, and on shutdown drains
 * every consumer before closing the resources. XState has no restart strategy of its own: a crashed
 * child reports `xstate.error.actor.<id>` and is replaced by a new actor under the same id.
 */

export interface SupervisorInput {
  consumers: ConsumerInput[]
  /** Restarts allowed per consumer before the daemon gives up and stops (exit 1). */
  maxRestarts: number
  /** Time allowed for the drain, in ms; the rest of the shutdown budget is for closing. */
  drainTimeoutMs: number
}

export interface SupervisorContext extends SupervisorInput {
  restarts: Record<string, number>
  /** Ids of the consumer actors alive now. */
  running: string[]
  exitCode: number
  timedOut: boolean
  failure: { consumer: string; message: string } | null
}

export type SupervisorEvent =
  /** SIGTERM/SIGINT: drain every consumer, close resources, stop. Repeats are ignored. */
  | { type: 'shutdown.request' }
  /** Internal: spawn a consumer again after its restart delay. */
  | { type: 'consumer.restart'; name: string }
  /** A consumer actor reached its final state. */
  | { type: `xstate.done.actor.${string}`; output?: unknown }
  /** A consumer actor crashed. */
  | { type: `xstate.error.actor.${string}`; error: unknown }

export interface SupervisorOutput {
  exitCode: number
  timedOut: boolean
  failure: { consumer: string; message: string } | null
}

/** Child id (and systemId) of a consumer actor. */
export const consumerId = (name: string) => `consumer-${name}`

const ERROR_PREFIX = 'xstate.error.actor.'
const DONE_PREFIX = 'xstate.done.actor.'
const CONSUMER_PREFIX = 'consumer-'

/** Consumer name from a child's error/done event type, or undefined when it is not a consumer. */
const consumerFromEvent = (type: string) => {
  const id = type.startsWith(ERROR_PREFIX)
    ? type.slice(ERROR_PREFIX.length)
    : type.startsWith(DONE_PREFIX)
      ? type.slice(DONE_PREFIX.length)
      : ''
  return id.startsWith(CONSUMER_PREFIX) ? id.slice(CONSUMER_PREFIX.length) : undefined
}

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
    /** Connects to the broker and starts the handler pools. */
    openResources: fromPromise<void, void>(notProvided('openResources')),
    /** Closes pools and connections; `force` when the drain timed out. */
    closeResources: fromPromise<void, { force: boolean }>(notProvided('closeResources')),
  },
  actions: {
    /** Logs a consumer crash and whether it will be restarted. Provided by src/. */
    reportCrash: (_, _params: { name: string; error: unknown; restart: boolean; delayMs: number }) => {},
    /** Logs the entries left unsettled when the drain timed out. Provided by src/. */
    reportUnfinished: () => {},
    forgetConsumer: assign({
      running: ({ context, event }) =>
        context.running.filter((id) => id !== consumerId(consumerFromEvent(event.type) ?? '')),
    }),
  },
  guards: {
    canRestart: ({ context }, params: { name: string }) =>
      (context.restarts[params.name] ?? 0) < context.maxRestarts,
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
    running: [],
    exitCode: 0,
    timedOut: false,
    failure: null,
  }),
  initial: 'starting',
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
        // A consumer's id is also its systemId; a restart reuses both.
        for (const c of context.consumers) {
          enqueue.spawnChild('consumer', { id: consumerId(c.name), systemId: consumerId(c.name), input: c })
        }
        enqueue.assign({ running: context.consumers.map((c) => consumerId(c.name)) })
      }),
      on: {
        'shutdown.request': 'draining',
        'xstate.done.actor.*': { actions: 'forgetConsumer' },
        'consumer.restart': {
          actions: enqueueActions(({ context, event, enqueue }) => {
            const input = context.consumers.find((c) => c.name === event.name)
            if (!input) return
            const id = consumerId(input.name)
            enqueue.spawnChild('consumer', { id, systemId: id, input })
            enqueue.assign({ running: [...context.running, id] })
          }),
        },
        'xstate.error.actor.*': [
          {
            guard: {
              type: 'canRestart',
              params: ({ event }) => ({ name: consumerFromEvent(event.type) ?? '' }),
            },
            actions: enqueueActions(({ context, event, enqueue }) => {
              const name = consumerFromEvent(event.type) ?? ''
              const restarts = (context.restarts[name] ?? 0) + 1
              const delayMs = Math.min(30_000, 500 * 2 ** (restarts - 1))
              const error = event.error
              enqueue({ type: 'reportCrash', params: { name, error, restart: true, delayMs } })
              enqueue('forgetConsumer')
              enqueue.assign({ restarts: { ...context.restarts, [name]: restarts } })
              enqueue(stopChild(consumerId(name)))
              enqueue(raise({ type: 'consumer.restart', name }, { delay: delayMs, id: `restart-${name}` }))
            }),
          },
          {
            target: 'draining',
            actions: [
              'forgetConsumer',
              {
                type: 'reportCrash',
                params: ({ event }) => ({
                  name: consumerFromEvent(event.type) ?? '',
                  error: event.error,
                  restart: false,
                  delayMs: 0,
                }),
              },
              assign({
                exitCode: 1,
                failure: ({ event }) => ({
                  consumer: consumerFromEvent(event.type) ?? '',
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
        'consumer.restart': {},
        'xstate.done.actor.*': { actions: 'forgetConsumer' },
        'xstate.error.actor.*': { actions: 'forgetConsumer' },
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
