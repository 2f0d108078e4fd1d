import { Buckets, HANDLER_BUCKETS, LATENCY_BUCKETS, LATENESS_BUCKETS } from './buckets.js'

/** The labels of every per-consumer series. */
export type ConsumerLabel = 'consumer' | 'stream' | 'group'
export type ConsumerLabels = Record<ConsumerLabel, string>
export const CONSUMER_LABELS: readonly ConsumerLabel[] = ['consumer', 'stream', 'group']

/** The counters the runtime feeds, keyed by their metric. */
export const COUNTERS = [
  'batches',
  'read',
  'handled',
  'failed',
  'retried',
  'deadLettered',
  'acked',
  'brokerErrors',
] as const
export type CounterKey = (typeof COUNTERS)[number]

/**
 * What one configured consumer did since the process started, as plain numbers: the inspector adds to
 * them once per batch, the registry reads them on scrape. Keyed by configured name, stream and group,
 * not by actor, so the totals stay monotonic across a consumer actor's restarts (its own stats start
 * again at zero); a reload that moves a consumer to another stream starts new series.
 */
export interface ConsumerTotals extends Record<CounterKey, number> {
  labels: ConsumerLabels
  /** Handler run time of each message that ran (seconds). */
  handlerSeconds: Buckets
  /** From `published-at` (or the entry id's time) to the XACK, for each acked message (seconds). */
  publishToAckSeconds: Buckets
  /** For delayed messages: from their `deliver-at` header to their XADD (the entry id's time). */
  delayLatenessSeconds: Buckets
}

/**
 * The totals of one consumer, created at zero the first time it is named: by the configuration when
 * the metrics attach, or by the consumer actor's first snapshot (a consumer added by a reload).
 */
export function ensureTotals(
  totals: Map<string, ConsumerTotals>,
  c: { name: string; stream: string; group: string },
): ConsumerTotals {
  const key = `${c.name}\u0000${c.stream}\u0000${c.group}`
  let t = totals.get(key)
  if (!t) {
    t = {
      labels: { consumer: c.name, stream: c.stream, group: c.group },
      batches: 0,
      read: 0,
      handled: 0,
      failed: 0,
      retried: 0,
      deadLettered: 0,
      acked: 0,
      brokerErrors: 0,
      handlerSeconds: new Buckets(HANDLER_BUCKETS),
      publishToAckSeconds: new Buckets(LATENCY_BUCKETS),
      delayLatenessSeconds: new Buckets(LATENESS_BUCKETS),
    }
    totals.set(key, t)
  }
  return t
}
