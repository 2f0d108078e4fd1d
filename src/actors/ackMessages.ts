import { fromPromise } from 'xstate'
import type { SettleInput } from '../../machines/types.js'
import { classify } from '../redis/errors.js'
import type { Resources } from '../resources.js'

/** One XACK for the whole batch's settled entries (handled, or durably dead-lettered). */
export const ackMessages = (res: Resources) =>
  fromPromise<void, SettleInput>(async ({ input }) => {
    if (input.outcomes.length === 0) return
    const ids = input.outcomes.map((o) => o.entryId)
    try {
      await res.redis.xack(input.stream, input.group, ...ids)
    } catch (err) {
      throw classify(err, `XACK ${input.stream} ${input.group}`)
    }
  })
