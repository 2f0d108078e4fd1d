import { assign, fromPromise, setup } from 'xstate'
import type { ReclaimInput, ReclaimResult } from './types.js'

/**
 * One per daemon. Every interval it renews this daemon's heartbeat, then looks at every group it
 * consumes for consumers whose heartbeat expired (a daemon that was SIGKILLed, lost its host, or froze
 * past the TTL): their pending entries are handed to this daemon's consumer at once, instead of after a
 * fixed idle guess, while a live daemon's long-running handler is never taken. Dead consumers are
 * removed once their PEL is empty. Then it trims the streams (stream trimming never removes an entry
 * a group has not acked). On shutdown it deletes its heartbeat, so whatever this daemon leaves
 * pending is picked up by the others without waiting for the TTL.
 */

export interface ReclaimerContext extends ReclaimInput {
  stats: {
    beats: number
    scans: number
    reclaimed: number
    removedConsumers: number
    trimmed: number
    failures: number
  }
  lastError: string | null
}

export type ReclaimerEvent =
  /** Delete the heartbeat and stop. */
  { type: 'shutdown.request' }

const notProvided = (name: string) => (): Promise<never> =>
  Promise.reject(
    new Error(`reclaimerMachine: actor "${name}" was not provided; use reclaimerMachine.provide()`),
  )

const describe = (error: unknown) => (error instanceof Error ? error.message : String(error))

export const reclaimerMachine = setup({
  types: {
    context: {} as ReclaimerContext,
    events: {} as ReclaimerEvent,
    input: {} as ReclaimInput,
  },
  actors: {
    /** SET the heartbeat key with the TTL. */
    heartbeat: fromPromise<void, ReclaimInput>(notProvided('heartbeat')),
    /** Hands the pending entries of dead consumers to this daemon's consumers; removes empty dead ones. */
    reclaimOrphans: fromPromise<ReclaimResult, ReclaimInput>(notProvided('reclaimOrphans')),
    /** Trims each watched stream below the oldest entry a group still needs; resolves with entries removed. */
    trimStreams: fromPromise<number, ReclaimInput>(notProvided('trimStreams')),
    /** DEL the heartbeat key. */
    releaseHeartbeat: fromPromise<void, ReclaimInput>(notProvided('releaseHeartbeat')),
  },
  actions: {
    /** Tells the consumers that received orphans to look at their PEL now. Provided by src/. */
    wakeConsumers: (_, _params: { names: string[] }) => {},
    recordFailure: assign({
      stats: ({ context }) => ({ ...context.stats, failures: context.stats.failures + 1 }),
      lastError: ({ event }) => describe((event as { error?: unknown }).error),
    }),
  },
  delays: {
    reclaimInterval: ({ context }) => context.intervalMs,
  },
}).createMachine({
  id: 'reclaimer',
  context: ({ input }) => ({
    ...input,
    stats: { beats: 0, scans: 0, reclaimed: 0, removedConsumers: 0, trimmed: 0, failures: 0 },
    lastError: null,
  }),
  initial: 'beating',
  on: { 'shutdown.request': '.releasing' },
  states: {
    beating: {
      invoke: {
        src: 'heartbeat',
        input: ({ context }) => context,
        onDone: {
          target: 'scanning',
          actions: assign({ stats: ({ context }) => ({ ...context.stats, beats: context.stats.beats + 1 }) }),
        },
        // A failed beat (Redis down) is retried on the next interval; the TTL covers one miss.
        onError: { target: 'waiting', actions: 'recordFailure' },
      },
    },
    scanning: {
      invoke: {
        src: 'reclaimOrphans',
        input: ({ context }) => context,
        onDone: {
          target: 'trimming',
          actions: [
            { type: 'wakeConsumers', params: ({ event }) => ({ names: event.output.consumers }) },
            assign({
              stats: ({ context, event }) => ({
                ...context.stats,
                scans: context.stats.scans + 1,
                reclaimed: context.stats.reclaimed + event.output.reclaimed,
                removedConsumers: context.stats.removedConsumers + event.output.removedConsumers,
              }),
            }),
          ],
        },
        onError: { target: 'waiting', actions: 'recordFailure' },
      },
    },
    /** Trims the streams below what every group still needs; the actor runs only when due. */
    trimming: {
      invoke: {
        src: 'trimStreams',
        input: ({ context }) => context,
        onDone: {
          target: 'waiting',
          actions: assign({
            stats: ({ context, event }) => ({
              ...context.stats,
              trimmed: context.stats.trimmed + event.output,
            }),
          }),
        },
        onError: { target: 'waiting', actions: 'recordFailure' },
      },
    },
    waiting: {
      after: { reclaimInterval: 'beating' },
    },
    releasing: {
      invoke: {
        src: 'releaseHeartbeat',
        input: ({ context }) => context,
        onDone: 'stopped',
        onError: 'stopped',
      },
      on: { 'shutdown.request': {} },
    },
    stopped: { type: 'final' },
  },
})

export type ReclaimerMachine = typeof reclaimerMachine
