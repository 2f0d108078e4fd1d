import { fromPromise } from 'xstate'
import type { SettleInput } from '../../machines/types.js'
import { reviveError } from '../errors.js'
import type { Resources } from '../resources.js'

/** Failed messages are not acked: they stay in the PEL for re-delivery. This logs each failure. */
export const recordRetries = (res: Resources) =>
  fromPromise<void, SettleInput>(({ input }) => {
    const log = res.logFor(input.name)
    for (const o of input.outcomes) {
      if (o.status !== 'retry') continue
      log.warn(
        { entryId: o.entryId, id: o.id, attempt: o.attempt, err: reviveError(o.error) },
        'handler failed; left pending',
      )
    }
    return Promise.resolve()
  })
