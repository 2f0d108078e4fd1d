import { fromTask } from './fromTask.js'
import type { SettleInput } from '../../machines/types.js'
import { dedupeRules, settleBatch } from '../redis/dedupe.js'
import { classify } from '../redis/errors.js'
import type { Resources } from '../resources.js'

/**
 * One call for the whole batch's settled entries (handled, or durably dead-lettered): the dedupe
 * marks, then the XACK, atomically in one script. Then the backup rows are confirmed (acked or dead)
 * in the background, batched with other consumers' confirmations.
 */
export const ackMessages = (res: Resources) =>
  fromTask<void, SettleInput>(async ({ input }) => {
    if (input.outcomes.length === 0) return
    try {
      await settleBatch(res.redis, input, input.outcomes, dedupeRules(res.consumer(input.name)))
    } catch (err) {
      throw classify(err, `XACK ${input.stream} ${input.group}`)
    }
    // After the XACK, never before: a row marked acked is never re-sent. Not for a duplicate whose
    // twin is still running: the row is the twin's too, and the twin may yet fail.
    res.confirmer?.confirm(
      input.outcomes.filter((o) => o.status === 'ok' && o.duplicate !== 'in-progress').map((o) => o.id),
      input.outcomes.filter((o) => o.status === 'dead').map((o) => o.id),
    )
  })
