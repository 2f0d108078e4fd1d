import { fromTask } from './fromTask.js'
import type { SettleInput } from '../../machines/types.js'
import { reviveError } from '../errors.js'
import type { Resources } from '../resources.js'
import { backoffMs } from '../retry/backoff.js'

/**
 * Failed messages are not acked: they stay in the PEL, and the claim step re-delivers each once its
 * backoff has passed. This schedules that scan and logs each failure with its next retry.
 */
export const recordRetries = (res: Resources) =>
  fromTask<void, SettleInput>(({ input }) => {
    const log = res.logFor(input.name)
    const policy = res.consumer(input.name)
    const now = Date.now()
    const attempts = new Map<string, number>()
    for (const o of input.outcomes) {
      if (o.status !== 'retry') continue
      const nextRetryMs = backoffMs(o.attempt, policy, o.entryId)
      res.schedule.expect(input.name, now + nextRetryMs)
      attempts.set(o.id, o.attempt)
      log.warn(
        { entryId: o.entryId, id: o.id, attempt: o.attempt, nextRetryMs, err: reviveError(o.error) },
        'handler failed; retrying',
      )
    }
    // Durable attempt counts: the PEL's delivery counts are lost when Redis fails over.
    res.confirmer?.attempt(attempts)
    return Promise.resolve()
  })
