import { fromPromise } from 'xstate'
import type { Resources } from '../resources.js'
import { pruneSettled as prune } from '../store/retention.js'

/**
 * Deletes acked backup rows and delivered delays past their retention, at most once per
 * `retention.intervalMs` (the republisher calls it after every pass; most calls do nothing).
 */
export const pruneSettled = (res: Resources) => {
  let nextAt = 0
  return fromPromise<number, void>(async () => {
    const store = res.store
    const settings = res.config.retention
    if (!store || Date.now() < nextAt) return 0
    nextAt = Date.now() + settings.intervalMs
    const { backup, delay, processed } = await prune(store, settings)
    const total = backup + delay + processed
    if (total > 0) {
      res.log.info(
        { actor: 'republisher', backup, delay, processed },
        'pruned settled rows past their retention',
      )
    }
    return total
  })
}
