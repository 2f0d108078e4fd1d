import type { Logger } from '../log.js'
import type { Redis, RedisClient } from './connect.js'

/**
 * Warns when a server may evict keys: under memory pressure any policy but `noeviction` deletes keys
 * to make room — a stream with its consumer groups and PEL, a dead-letter stream, dedupe marks — and
 * messages vanish without an error. `noeviction` refuses writes instead, which the publisher reports
 * (ACK_ERR_REDIS_COMMAND, OOM). On a Cluster every master is asked. CONFIG is often disabled on
 * managed Redis: then nothing can be known and nothing is said above debug.
 */
export async function warnOnEviction(redis: RedisClient, log: Logger): Promise<void> {
  const servers: RedisClient[] = 'nodes' in redis ? redis.nodes('master') : [redis]
  await Promise.all(
    servers.map(async (server) => {
      const { host, port } = (server as Redis).options ?? {}
      const node = host ? `${host}:${port}` : undefined
      try {
        const reply: unknown = await server.config('GET', 'maxmemory-policy')
        const policy = policyOf(reply)
        if (policy && policy !== 'noeviction') {
          log.warn(
            { policy, node },
            'redis maxmemory-policy is not noeviction: when memory runs out Redis deletes keys (streams, consumer groups, pending entries), losing messages silently; set maxmemory-policy noeviction',
          )
        }
      } catch (err) {
        log.debug({ err, node }, 'could not read maxmemory-policy (CONFIG disabled?)')
      }
    }),
  )
}

/** CONFIG GET replies `[name, value]` (RESP2) or `{ name: value }` (RESP3 without legacy mapping). */
function policyOf(reply: unknown): string | undefined {
  if (Array.isArray(reply)) return reply[1] === undefined ? undefined : String(reply[1])
  if (reply instanceof Map) return reply.get('maxmemory-policy') as string | undefined
  if (reply && typeof reply === 'object') return (reply as Record<string, string>)['maxmemory-policy']
  return undefined
}
