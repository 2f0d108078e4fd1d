import { isMachineSnapshot, type InspectionEvent } from 'xstate'
import type { ConsumerContext, ConsumerStats } from '../../machines/consumerMachine.js'
import type { Entry, Outcome } from '../../machines/types.js'
import { ensureTotals, type ConsumerTotals } from './totals.js'

/** What was last seen of one consumer actor (one per actor session: a restarted actor is new). */
interface Seen {
  stats: ConsumerStats
  /** The batch whose outcomes are known but not yet acked: publish-to-ack is measured at its XACK. */
  batch: Entry[] | null
  outcomes: Outcome[] | null
}

const ZERO: ConsumerStats = {
  batches: 0,
  read: 0,
  handled: 0,
  retried: 0,
  deadLettered: 0,
  acked: 0,
  brokerErrors: 0,
}

/**
 * Feeds the per-consumer totals from XState's inspection events, so the machines know nothing of
 * metrics. The consumer machine replaces `context.stats` only in the steps that count something (a
 * batch processed, dead-lettered, acked, a broker error), so a reference check skips every other
 * snapshot; the work below runs a few times per batch, never per message except the two histogram
 * loops, which allocate nothing.
 *
 * - counters: the difference between this snapshot's stats and the last seen ones;
 * - handler durations and `failed`: from `context.outcomes` in the step where `batches` grew;
 * - delay lateness: in that step too, for first deliveries of messages the delay scheduler released
 *   (header `deliver-at`): from when they were due to their XADD (the entry id's time);
 * - publish-to-ack: in the step where `acked` grew, i.e. right after the XACK round trip returned,
 *   for that batch's non-retried entries, from the `published-at` header the publisher sets (falling
 *   back to the entry id's time, Redis's clock at XADD, for entries written by other clients).
 */
export function metricsInspector(totals: Map<string, ConsumerTotals>): (ev: InspectionEvent) => void {
  const seen = new Map<string, Seen>()
  return (ev) => {
    if (ev.type !== '@xstate.snapshot') return
    const snap = ev.snapshot
    if (!isMachineSnapshot(snap) || snap.machine.id !== 'consumer') return
    const session = ev.actorRef.sessionId
    const ctx = snap.context as ConsumerContext
    let last = seen.get(session)
    if (!last) {
      last = { stats: ZERO, batch: null, outcomes: null }
      seen.set(session, last)
    }
    if (snap.status !== 'active') seen.delete(session)
    const next = ctx.stats
    if (next === last.stats) return
    const t = ensureTotals(totals, ctx)
    const prev = last.stats
    last.stats = next
    t.batches += next.batches - prev.batches
    t.read += next.read - prev.read
    t.handled += next.handled - prev.handled
    t.retried += next.retried - prev.retried
    t.deadLettered += next.deadLettered - prev.deadLettered
    t.brokerErrors += next.brokerErrors - prev.brokerErrors
    if (next.batches !== prev.batches) {
      t.failed += recordDurations(t, ctx.outcomes)
      recordDelayLateness(t, ctx.batch)
      last.batch = ctx.batch
      last.outcomes = ctx.outcomes
    }
    if (next.acked !== prev.acked) {
      t.acked += next.acked - prev.acked
      if (last.batch && last.outcomes) recordPublishToAck(t, last.batch, last.outcomes, Date.now())
      last.batch = null
      last.outcomes = null
    }
  }
}

/** Observes each handler run; returns how many messages failed. */
function recordDurations(t: ConsumerTotals, outcomes: Outcome[]): number {
  let failed = 0
  for (let i = 0; i < outcomes.length; i++) {
    const o = outcomes[i]!
    if (o.status !== 'ok') failed++
    // Exactly 0 means the handler did not run: a duplicate acked unseen, an entry deleted while
    // pending, a crashed worker's chunk. A real run measured with performance.now() is never 0.
    if (o.durationMs !== 0) t.handlerSeconds.observe(o.durationMs / 1000)
  }
  return failed
}

/**
 * The scheduler stamps `deliver-at` on what it releases; the entry id is Redis's clock at that XADD.
 * Only first deliveries count, so a retried message is not measured twice.
 */
function recordDelayLateness(t: ConsumerTotals, batch: Entry[]): void {
  for (let i = 0; i < batch.length; i++) {
    const e = batch[i]!
    const due = e.headers['deliver-at']
    if (due === undefined || e.attempt !== 1) continue
    const late = parseInt(e.entryId, 10) - Date.parse(due)
    if (!Number.isNaN(late)) t.delayLatenessSeconds.observe(Math.max(0, late) / 1000)
  }
}

/** Outcomes are in batch order (processBatch keeps it); an entry that does not line up is skipped. */
function recordPublishToAck(t: ConsumerTotals, batch: Entry[], outcomes: Outcome[], now: number): void {
  // The entries of one publishMany() share their `published-at`: parsed once per run of them.
  let lastHeader: string | undefined
  let lastParsed = NaN
  for (let i = 0; i < outcomes.length; i++) {
    const o = outcomes[i]!
    const e = batch[i]
    if (o.status === 'retry' || !e || e.entryId !== o.entryId) continue
    const header = e.headers['published-at']
    if (header !== lastHeader) {
      lastHeader = header
      lastParsed = header === undefined ? NaN : Date.parse(header)
    }
    let published = lastParsed
    if (Number.isNaN(published)) published = parseInt(e.entryId, 10)
    t.publishToAckSeconds.observe(Math.max(0, now - published) / 1000)
  }
}
