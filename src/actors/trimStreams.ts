import { fromPromise } from 'xstate'
import type { ReclaimInput } from '../../machines/types.js'
import { classify } from '../redis/errors.js'
import { trimStream } from '../redis/trim.js'
import type { Resources } from '../resources.js'

/**
 * Trims every consumed stream below the oldest entry any group still needs (never an unacked or
 * unread one), at most once per `trim.intervalMs`. `trim.maxLength` is the safety valve: a stream
 * still longer than that is cut to it, unconsumed entries included, with an error log naming how many
 * — they are recoverable from the backup with `ackstate recover`. Resolves with the entries removed.
 */
export const trimStreams = (res: Resources) => {
  let nextAt = 0
  return fromPromise<number, ReclaimInput>(async ({ input }) => {
    const { intervalMs, maxLength } = res.config.trim
    if (Date.now() < nextAt) return 0
    nextAt = Date.now() + intervalMs
    let removed = 0
    for (const stream of new Set(input.targets.map((t) => t.stream))) {
      try {
        const result = await trimStream(res.redis, stream, maxLength)
        removed += result.trimmed + result.overLimit
        if (result.overLimit > 0) {
          res.log.error(
            { actor: 'reclaimer', stream, removed: result.overLimit, maxLength },
            'stream over trim.maxLength: entries cut before every group consumed them; run `ackstate recover` to re-send them from the backup',
          )
        } else if (result.trimmed > 0) {
          res.log.debug({ actor: 'reclaimer', stream, trimmed: result.trimmed }, 'stream trimmed')
        }
      } catch (err) {
        throw classify(err, `trim ${stream}`)
      }
    }
    return removed
  })
}
