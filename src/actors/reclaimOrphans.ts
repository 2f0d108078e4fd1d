import { fromPromise } from 'xstate'
import type { ReclaimInput, ReclaimResult } from '../../machines/types.js'
import type { Redis } from '../redis/connect.js'
import { heartbeatKey } from '../redis/keys.js'
import { classify } from '../redis/errors.js'
import type { Resources } from '../resources.js'

/** Idle time given to handed-over entries, so the receiving consumer finds them due at once. */
const HANDOVER_IDLE_MS = 365 * 24 * 3600 * 1000
const PAGE = 500

/**
 * Removes a consumer only if its PEL is empty, atomically: DELCONSUMER on a consumer that still owns
 * entries would drop them from the PEL, losing them.
 */
const DELETE_IF_EMPTY = `
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #pending > 0 then return -1 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])`

/**
 * For every watched group: a consumer that is idle past the heartbeat TTL and whose heartbeat key is
 * gone belongs to a dead daemon. Its pending entries are moved to this daemon's consumer (XCLAIM
 * JUSTID keeps the delivery count, IDLE makes them due), then the empty dead consumer is removed.
 * A consumer with a live heartbeat is never touched, however long its handler runs.
 */
export const reclaimOrphans = (res: Resources) =>
  fromPromise<ReclaimResult, ReclaimInput>(async ({ input }) => {
    const result: ReclaimResult = { reclaimed: 0, removedConsumers: 0, consumers: [] }
    const seen = new Set<string>()
    for (const target of input.targets) {
      const key = `${target.stream}\u0000${target.group}`
      if (seen.has(key)) continue
      seen.add(key)
      try {
        const moved = await reclaimGroup(res, input, target.stream, target.group, result)
        if (moved > 0) {
          result.reclaimed += moved
          result.consumers.push(target.name)
          res.logFor(target.name).warn({ count: moved }, 'reclaimed pending entries of a dead consumer')
        }
      } catch (err) {
        throw classify(err, `reclaim ${target.stream} ${target.group}`)
      }
    }
    return result
  })

async function reclaimGroup(
  res: Resources,
  input: ReclaimInput,
  stream: string,
  group: string,
  result: ReclaimResult,
): Promise<number> {
  let consumers: unknown[][]
  try {
    consumers = (await res.redis.xinfo('CONSUMERS', stream, group)) as unknown[][]
  } catch (err) {
    // The group does not exist yet (its consumer creates it): nothing to reclaim.
    if ((err as Error).message?.startsWith('NOGROUP')) return 0
    throw err
  }
  let moved = 0
  for (const flat of consumers) {
    const info = toObject(flat)
    const name = String(info.name)
    if (name === input.consumer || Number(info.idle) < input.heartbeatTtlMs) continue
    if ((await res.redis.exists(heartbeatKey(name))) === 1) continue
    if (Number(info.pending) > 0) moved += await handOver(res, input, stream, group, name)
    const removed = (await res.redis.eval(DELETE_IF_EMPTY, 1, stream, group, name)) as number
    if (removed >= 0) result.removedConsumers++
  }
  return moved
}

async function handOver(res: Resources, input: ReclaimInput, stream: string, group: string, dead: string) {
  let moved = 0
  for (;;) {
    const page = (await res.redis.xpending(stream, group, '-', '+', PAGE, dead)) as [string][]
    if (page.length === 0) return moved
    const ids = page.map((row) => row[0])
    // min-idle = the TTL: an entry delivered more recently than that is not an orphan's. (A Cluster
    // has the same XCLAIM; TypeScript cannot pick an overload on the union's variadic form.)
    const claimed = (await (res.redis as Redis).xclaim(
      stream,
      group,
      input.consumer,
      input.heartbeatTtlMs,
      ...ids,
      'IDLE',
      HANDOVER_IDLE_MS,
      'JUSTID',
    )) as string[]
    moved += claimed.length
    if (claimed.length < ids.length) return moved
  }
}

function toObject(flat: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = flat[i + 1]
  return out
}
