import { fromTask } from './fromTask.js'
import type { Outcome, ProcessInput } from '../../machines/types.js'
import type { Resources } from '../resources.js'
import { claimAndRun, sortBatch } from './batchAhead.js'

/**
 * Runs the batch in the consumer's handler pool; handler errors come back as outcomes, not
 * rejections. Before that, each message id is claimed for deduplication: an id the group already
 * completed (or that another entry is completing) is acked without running the handler again.
 * Entries that cannot be messages (deleted while pending, a payload too large, not JSON for a `json`
 * consumer: src/payload.ts) never reach the handler: they are dead-lettered with the reason. A batch
 * just read has usually been claimed and started in the pool by the read step already
 * (src/actors/batchAhead.ts): this step then waits for its outcomes.
 */
export const processBatch = (res: Resources) =>
  fromTask<Outcome[], ProcessInput>(async ({ input }) => {
    const ahead = res.batchesAhead.take(input.name, input.entries)
    const { rejected, present } = ahead ?? sortBatch(input.entries, res.consumer(input.name))
    const { ran, skipped } = await (ahead?.work ?? claimAndRun(res, input, present, null))
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
