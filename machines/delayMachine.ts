import { assign, fromCallback, fromPromise, setup } from 'xstate'
import type { DelayInput, ReleaseResult } from './types.js'

/**
 * The delay scheduler (one per daemon with a store). It releases due delay_message rows (XADD, then
 * mark delivered, in one transaction: a crash costs a duplicate, never a loss), then sleeps exactly
 * until the next row is due — no blind polling. A new delay that is due earlier than the planned
 * wake-up (a notification from any publisher, via LISTEN/NOTIFY) wakes it early; `maxIdleMs` bounds
 * the sleep in case a notification is lost.
 */

export interface DelayContext extends DelayInput {
  /** Epoch ms of the planned wake-up, or null while releasing. */
  wakeAt: number | null
  /** ms to sleep in `waiting`. */
  sleepMs: number
  /** Earliest due time announced while a pass ran (the pass may have read the table before it). */
  notifiedDueAt: number | null
  draining: boolean
  stats: { passes: number; released: number; failures: number; wakeups: number }
  lastError: string | null
}

export type DelayEvent =
  /** A delayed message was stored, due at `dueAt` (epoch ms). */
  | { type: 'delay.scheduled'; dueAt: number }
  /** Stop once the pass in flight is done. */
  | { type: 'shutdown.request' }

const notProvided = (name: string) => (): Promise<never> =>
  Promise.reject(new Error(`delayMachine: actor "${name}" was not provided; use delayMachine.provide()`))

export const delayMachine = setup({
  types: {
    context: {} as DelayContext,
    events: {} as DelayEvent,
    input: {} as DelayInput,
  },
  actors: {
    /** Releases one batch of due rows; reports when the next one is due. */
    releaseDue: fromPromise<ReleaseResult, DelayInput>(notProvided('releaseDue')),
    /** Listens for new delays (LISTEN); sends `delay.scheduled`. */
    listenForDelays: fromCallback<DelayEvent, DelayInput>(() => {
      throw new Error('delayMachine: actor "listenForDelays" was not provided; use delayMachine.provide()')
    }),
  },
  actions: {
    plan: assign(({ context }, params: { result: ReleaseResult }) => {
      const { nextDueInMs, now } = params.result
      let sleepMs =
        nextDueInMs === null ? context.maxIdleMs : Math.min(Math.max(0, nextDueInMs), context.maxIdleMs)
      if (context.notifiedDueAt !== null)
        sleepMs = Math.max(0, Math.min(sleepMs, context.notifiedDueAt - now))
      return { sleepMs, wakeAt: now + sleepMs, notifiedDueAt: null }
    }),
    count: assign({
      stats: ({ context }, params: { released: number }) => ({
        ...context.stats,
        passes: context.stats.passes + 1,
        released: context.stats.released + params.released,
      }),
    }),
  },
  guards: {
    isDraining: ({ context }) => context.draining,
    /** More rows are due right now: the batch was full, or the next one is already due. */
    moreDue: (_, params: { result: ReleaseResult; batchSize: number }) =>
      params.result.released >= params.batchSize || params.result.nextDueInMs === 0,
    /** The new delay is due before the planned wake-up. */
    dueEarlier: ({ context }, params: { dueAt: number }) =>
      context.wakeAt === null || params.dueAt < context.wakeAt,
  },
  delays: {
    untilNextDue: ({ context }) => context.sleepMs,
  },
}).createMachine({
  id: 'delay-scheduler',
  context: ({ input }) => ({
    ...input,
    wakeAt: null,
    sleepMs: 0,
    notifiedDueAt: null,
    draining: false,
    stats: { passes: 0, released: 0, failures: 0, wakeups: 0 },
    lastError: null,
  }),
  invoke: { src: 'listenForDelays', input: ({ context }) => context },
  initial: 'releasing',
  states: {
    releasing: {
      entry: assign({ wakeAt: null }),
      invoke: {
        src: 'releaseDue',
        input: ({ context }) => ({
          consumer: context.consumer,
          batchSize: context.batchSize,
          maxIdleMs: context.maxIdleMs,
        }),
        onDone: [
          {
            guard: 'isDraining',
            target: 'stopped',
            actions: { type: 'count', params: ({ event }) => ({ released: event.output.released }) },
          },
          {
            guard: {
              type: 'moreDue',
              params: ({ context, event }) => ({ result: event.output, batchSize: context.batchSize }),
            },
            target: 'releasing',
            reenter: true,
            actions: { type: 'count', params: ({ event }) => ({ released: event.output.released }) },
          },
          {
            target: 'waiting',
            actions: [
              { type: 'count', params: ({ event }) => ({ released: event.output.released }) },
              { type: 'plan', params: ({ event }) => ({ result: event.output }) },
            ],
          },
        ],
        onError: [
          { guard: 'isDraining', target: 'stopped' },
          {
            // PostgreSQL or Redis is down: try again after the idle bound.
            target: 'waiting',
            actions: assign({
              sleepMs: ({ context }) => Math.min(1_000, context.maxIdleMs),
              stats: ({ context }) => ({ ...context.stats, failures: context.stats.failures + 1 }),
              lastError: ({ event }) =>
                event.error instanceof Error ? event.error.message : String(event.error),
            }),
          },
        ],
      },
      on: {
        'shutdown.request': { actions: assign({ draining: true }) },
        'delay.scheduled': {
          actions: assign({
            notifiedDueAt: ({ context, event }) => Math.min(context.notifiedDueAt ?? Infinity, event.dueAt),
          }),
        },
      },
    },
    waiting: {
      after: { untilNextDue: 'releasing' },
      on: {
        'delay.scheduled': {
          guard: { type: 'dueEarlier', params: ({ event }) => ({ dueAt: event.dueAt }) },
          target: 'releasing',
          actions: assign({
            stats: ({ context }) => ({ ...context.stats, wakeups: context.stats.wakeups + 1 }),
          }),
        },
        'shutdown.request': 'stopped',
      },
    },
    stopped: { type: 'final' },
  },
})

export type DelayMachine = typeof delayMachine
