import { Redis, type RedisOptions } from 'ioredis'
import type { Logger } from '../log.js'

export type { Redis }

/**
 * Opens an ioredis connection with the failure behaviour the machines expect: a command waits through
 * a short outage (two retries), then fails with an error that classify() maps to
 * ACK_ERR_REDIS_UNAVAILABLE, while ioredis keeps reconnecting in the background.
 */
export function connectRedis(url: string, role: string, log: Logger, extra: RedisOptions = {}): Redis {
  const redis = new Redis(url, {
    connectionName: `ackstate:${role}`,
    maxRetriesPerRequest: 2,
    retryStrategy: (times) => Math.min(times * 100, 2_000),
    ...extra,
  })
  let lastError = ''
  redis.on('error', (err: Error) => {
    // ioredis emits the same error on every reconnect attempt; log each distinct one once.
    if (err.message === lastError) return
    lastError = err.message
    log.warn({ err, role }, 'redis connection error')
  })
  redis.on('ready', () => {
    if (lastError) log.info({ role }, 'redis connection restored')
    lastError = ''
  })
  return redis
}

/**
 * Closes a connection: QUIT when it is up (replies in flight arrive first), a plain disconnect when
 * it is not — QUIT on a connection that never came up would wait in the offline queue.
 */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status !== 'ready') {
    redis.disconnect()
    return
  }
  await redis.quit().catch(() => redis.disconnect())
}
