import { fromPromise } from 'xstate'
import type { Outcome, ProcessInput } from '../../machines/types.js'
import { claimIds, dedupeRules, type Claim } from '../redis/dedupe.js'
import { classify } from '../redis/errors.js'
import type { Resources } from '../resources.js'
import { sortBatch } from './claimAhead.js'

/**
 * Runs the batch in the consumer's handler pool; handler errors come back as outcomes, not
 * rejections. Before that, each message id is claimed for deduplication: an id the group already
 * completed (or that another entry is completing) is acked without running the handler again.
 * Entries that cannot be messages (deleted while pending, a payload too large, not JSON for a `json`
 * consumer: src/payload.ts) never reach the handler: they are dead-lettered with the reason. The read
 * step has usually sorted the batch and sent its claim already (src/actors/claimAhead.ts).
 */
export const processBatch = (res: Resources) =>
  fromPromise<Outcome[], ProcessInput>(async ({ input }) => {
    const rules = res.consumer(input.name)
    const { handlerTimeoutMs, dedupeTtlMs } = rules
    const ahead = res.claimsAhead.take(input.name, input.entries)
    const { rejected, present } = ahead ?? sortBatch(input.entries, rules)
    let run = present
    /** Acked without running, with why: the id is done, or another entry is completing it. */
    let skipped: Outcome[] = []
    if (dedupeTtlMs > 0 && present.length > 0) {
      let claims: Claim[]
      try {
        claims = await (ahead?.claims ?? claimIds(res.redis, input, present, dedupeRules(rules)))
      } catch (err) {
        throw classify(err, `dedupe ${input.stream} ${input.group}`)
      }
      run = present.filter((_, i) => claims[i] === 'run')
      skipped = present.flatMap((e, i): Outcome[] => {
        const claim = claims[i]!
        return claim === 'run'
          ? []
          : [{ entryId: e.entryId, id: e.id, status: 'ok', durationMs: 0, duplicate: claim }]
      })
    }
    const ran =
      run.length > 0
        ? await res.pool(input.name).run({ ...input, entries: run, timeoutMs: handlerTimeoutMs })
        : []
    const log = res.logFor(input.name)
    if (skipped.length > 0)
      log.info({ ids: skipped.map((e) => e.id) }, 'duplicate messages acked without running')
    log.debug({ count: ran.length }, 'batch processed')
    if (ran.length === input.entries.length) return ran
    // The sorting is this batch's alone (taken once), so its map of dead entries can collect the rest.
    const byEntry = rejected
    for (const o of ran) byEntry.set(o.entryId, o)
    for (const o of skipped) byEntry.set(o.entryId, o)
    return input.entries.map((e) => byEntry.get(e.entryId)!)
  })
