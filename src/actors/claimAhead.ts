import type { Entry, Outcome } from '../../machines/types.js'
import type { ConsumerConfig } from '../config.js'
import { entryProblem } from '../payload.js'
import { claimIds, dedupeRules, type Claim, type DedupeTarget } from '../redis/dedupe.js'
import type { RedisClient } from '../redis/connect.js'

/** A batch split by what can reach the handler: entries that cannot be messages, and the rest. */
export interface Sorted {
  /** Entries that cannot be messages (src/payload.ts), by entry id: dead, with why. */
  rejected: Map<string, Outcome>
  present: Entry[]
}

export function sortBatch(entries: Entry[], rules: ConsumerConfig): Sorted {
  const rejected = new Map<string, Outcome>()
  const present: Entry[] = []
  for (const e of entries) {
    const error = entryProblem(e, rules)
    if (error)
      rejected.set(e.entryId, {
        entryId: e.entryId,
        id: e.id,
        status: 'dead',
        durationMs: 0,
        attempt: e.attempt,
        error,
      })
    else present.push(e)
  }
  return { rejected, present }
}

interface Ahead extends Sorted {
  batch: Entry[]
  /** The dedupe claims of `present`; null with deduplication off. Never rejects unobserved. */
  claims: Promise<Claim[]> | null
}

/**
 * The dedupe claim of a batch, sent the moment the batch is read instead of once the consumer
 * machine has stepped to `processing` and invoked the pool run: the round trip to Redis then
 * overlaps that step, and a message reaches its handler that much sooner. At most one per consumer
 * (a read loop has one batch in flight); the processing step takes it for the very batch it was made
 * for, else claims afresh. A claim made for a batch that is never processed (a shutdown in between)
 * is the same as one made by a processing step that crashed: the same entry may claim again, and
 * any other waits until it lapses.
 */
export class ClaimsAhead {
  private readonly ahead = new Map<string, Ahead>()

  /** Sorts a batch just read by consumer `name` and sends its claim. */
  start(name: string, redis: RedisClient, target: DedupeTarget, batch: Entry[], rules: ConsumerConfig): void {
    const sorted = sortBatch(batch, rules)
    let claims: Promise<Claim[]> | null = null
    if (rules.dedupeTtlMs > 0 && sorted.present.length > 0) {
      claims = claimIds(redis, target, sorted.present, dedupeRules(rules))
      // Awaited by the processing step; a batch never processed must not leave a rejection unhandled.
      claims.catch(() => {})
    }
    this.ahead.set(name, { ...sorted, batch, claims })
  }

  /** The sorting and claim started for exactly this batch (the same array), once; else null. */
  take(name: string, batch: Entry[]): Ahead | null {
    const ahead = this.ahead.get(name)
    if (!ahead) return null
    this.ahead.delete(name)
    return ahead.batch === batch ? ahead : null
  }
}
