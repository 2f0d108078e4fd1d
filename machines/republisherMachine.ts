import { assign, fromPromise, setup } from 'xstate'
import type { RepublishInput, RepublishResult } from './types.js'

/**
 * One per daemon with a store. Every interval it re-sends backup rows that never reached Redis: rows
 * whose publisher died between its commit and its XADD (its heartbeat expired), rows a publisher gave
 * up after a failed XADD, and rows pending far longer than any XADD takes. The rows are locked with
 * FOR UPDATE SKIP LOCKED, so several daemons share the work; each is XADDed before the commit, so a
 * crash costs at worst a duplicate (deduplicated by message id), never a loss. Between passes it
 * prunes settled rows past their retention.
 */

export interface RepublisherContext extends RepublishInput {
  /** Set by a shutdown request during a pass: the pass holds row locks, so it finishes first. */
  draining: boolean
  stats: { scans: number; resent: number; failures: number; pruned: number }
  lastError: string | null
}

export type RepublisherEvent =
  /** Stop once the pass in flight (if any) is done. */
  { type: 'shutdown.request' }

const notProvided = (name: string) => (): Promise<never> =>
  Promise.reject(
    new Error(`republisherMachine: actor "${name}" was not provided; use republisherMachine.provide()`),
  )

export const republisherMachine = setup({
  types: {
    context: {} as RepublisherContext,
    events: {} as RepublisherEvent,
    input: {} as RepublishInput,
  },
  actors: {
    /** Re-sends one batch of orphaned backup rows. */
    republish: fromPromise<RepublishResult, RepublishInput>(notProvided('republish')),
    /** Deletes acked backup rows and delivered delays past their retention, when due; resolves with the count. */
    pruneSettled: fromPromise<number, void>(notProvided('pruneSettled')),
  },
  actions: {
    count: assign({
      stats: ({ context }, params: { resent: number }) => ({
        ...context.stats,
        scans: context.stats.scans + 1,
        resent: context.stats.resent + params.resent,
      }),
    }),
  },
  guards: {
    isDraining: ({ context }) => context.draining,
    /** A full batch means more may be waiting: go again without waiting. */
    hadFullBatch: ({ context }, params: { resent: number }) => params.resent >= context.batchSize,
  },
  delays: {
    republishInterval: ({ context }) => context.intervalMs,
  },
}).createMachine({
  id: 'republisher',
  context: ({ input }) => ({
    ...input,
    draining: false,
    stats: { scans: 0, resent: 0, failures: 0, pruned: 0 },
    lastError: null,
  }),
  initial: 'scanning',
  states: {
    scanning: {
      invoke: {
        src: 'republish',
        input: ({ context }) => ({
          consumer: context.consumer,
          intervalMs: context.intervalMs,
          batchSize: context.batchSize,
          republishAfterMs: context.republishAfterMs,
          staleAfterMs: context.staleAfterMs,
        }),
        onDone: [
          {
            guard: 'isDraining',
            target: 'stopped',
            actions: { type: 'count', params: ({ event }) => ({ resent: event.output.resent }) },
          },
          {
            guard: { type: 'hadFullBatch', params: ({ event }) => ({ resent: event.output.resent }) },
            target: 'scanning',
            reenter: true,
            actions: { type: 'count', params: ({ event }) => ({ resent: event.output.resent }) },
          },
          {
            target: 'pruning',
            actions: { type: 'count', params: ({ event }) => ({ resent: event.output.resent }) },
          },
        ],
        onError: [
          { guard: 'isDraining', target: 'stopped' },
          {
            target: 'waiting',
            actions: assign({
              stats: ({ context }) => ({ ...context.stats, failures: context.stats.failures + 1 }),
              lastError: ({ event }) =>
                event.error instanceof Error ? event.error.message : String(event.error),
            }),
          },
        ],
      },
      on: { 'shutdown.request': { actions: assign({ draining: true }) } },
    },
    /** Deletes settled rows past their retention; the actor itself runs the deletes only when due. */
    pruning: {
      invoke: {
        src: 'pruneSettled',
        onDone: {
          target: 'waiting',
          actions: assign({
            stats: ({ context, event }) => ({
              ...context.stats,
              pruned: context.stats.pruned + event.output,
            }),
          }),
        },
        onError: {
          target: 'waiting',
          actions: assign({
            lastError: ({ event }) =>
              event.error instanceof Error ? event.error.message : String(event.error),
          }),
        },
      },
      on: { 'shutdown.request': 'stopped' },
    },
    waiting: {
      after: { republishInterval: 'scanning' },
      on: { 'shutdown.request': 'stopped' },
    },
    stopped: { type: 'final' },
  },
})

export type RepublisherMachine = typeof republisherMachine
