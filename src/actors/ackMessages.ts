import { fromPromise } from 'xstate'
import type { SettleInput } from '../../machines/types.js'
import { settleBatch } from '../redis/dedupe.js'
import { classify } from '../redis/errors.js'
import type { Resources } from '../resources.js'

/**
 * One call for the whole batch's settled entries (handled, or durably dead-lettered): the dedupe
 * marks, then the XACK, atomically in one script.
 */
export const ackMessages = (res: Resources) =>
  fromPromise<void, SettleInput>(async ({ input }) => {
    if (input.outcomes.length === 0) return
    try {
      await settleBatch(res.redis, input, input.outcomes, res.consumer(input.name).dedupeTtlMs)
    } catch (err) {
      throw classify(err, `XACK ${input.stream} ${input.group}`)
    }
  })
