import { fromPromise } from 'xstate'
import type { ReclaimInput } from '../../machines/types.js'
import { heartbeatKey } from '../redis/keys.js'
import { classify } from '../redis/errors.js'
import type { Resources } from '../resources.js'

/** Renews this daemon's heartbeat; other daemons treat its consumers as dead once it expires. */
export const heartbeat = (res: Resources) =>
  fromPromise<void, ReclaimInput>(async ({ input }) => {
    try {
      await res.redis.set(heartbeatKey(input.consumer), res.heartbeatValue(), 'PX', input.heartbeatTtlMs)
    } catch (err) {
      throw classify(err, 'SET heartbeat')
    }
  })

/** Deletes the heartbeat on a clean stop: what this daemon left pending is reclaimed without waiting. */
export const releaseHeartbeat = (res: Resources) =>
  fromPromise<void, ReclaimInput>(async ({ input }) => {
    await res.redis.del(heartbeatKey(input.consumer))
  })
