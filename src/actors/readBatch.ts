import { setTimeout as sleep } from 'node:timers/promises'
import { fromPromise } from 'xstate'
import type { Entry, ReadInput } from '../../machines/types.js'
import { decodeReply, type StreamReply } from '../redis/entries.js'
import { classify } from '../redis/errors.js'
import type { Resources } from '../resources.js'

/**
 * XREADGROUP GROUP g c COUNT n BLOCK ms STREAMS s > on the consumer's own connection. When the actor
 * is stopped (shutdown), the connection is dropped so the blocked read ends at once and nothing more
 * is read; an entry Redis delivered in that instant stays in the PEL.
 */
export const readBatch = (res: Resources) =>
  fromPromise<Entry[], ReadInput>(async ({ input, signal }) => {
    if (input.count <= 0) {
      // The pool is closing and granted nothing; COUNT 0 would mean "no limit" to Redis.
      await sleep(input.blockMs, undefined, { signal }).catch(() => {})
      return []
    }
    const reader = res.reader(input.name, input.consumer)
    const onAbort = () => res.dropReader(input.name)
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      const reply: StreamReply = await reader.xreadgroup(
        'GROUP',
        input.group,
        input.consumer,
        'COUNT',
        input.count,
        'BLOCK',
        // Wake in time for the next due retry instead of blocking past it.
        Math.min(input.blockMs, res.schedule.msUntilDue(input.name)),
        'STREAMS',
        input.stream,
        '>',
      )
      return decodeReply(reply)
    } catch (err) {
      throw classify(err, `XREADGROUP ${input.stream} ${input.group}`)
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
  })
