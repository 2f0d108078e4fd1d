import { Gauge, type Registry } from 'prom-client'
import type { RedisClient } from '../redis/connect.js'
import type { Logger } from '../log.js'
import { cached } from './cache.js'
import { readStreamStats, type StreamStats, type StreamTarget } from './streams.js'
import { CONSUMER_LABELS } from './totals.js'

/** A scrape reuses Redis's answers this long (several gauges, several scrapers, one round trip). */
export const REDIS_CACHE_MS = 1_000

interface RedisSnapshot {
  streams: StreamStats[]
  memory: { used: number; max: number }
}

/** `used_memory` and `maxmemory` from INFO memory (maxmemory 0 means no limit). */
export function parseMemoryInfo(info: string): { used: number; max: number } {
  const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? 0)
  return { used: field('used_memory'), max: field('maxmemory') }
}

/**
 * The gauges read from Redis on scrape (never on a timer): per configured consumer the stream
 * length, group lag, PEL size, oldest pending age and dead-letter stream length; and Redis's memory,
 * because a full Redis under `noeviction` refuses every publish. When Redis does not answer the
 * gauges are left empty (a stale value would hide the outage). Returns the probe behind
 * `ackstate_collector_up{source="redis"}`.
 */
export function registerRedisMetrics(
  registry: Registry,
  /** The connection, asked anew per scrape (its owner replaces one that ioredis ended). */
  redis: () => RedisClient,
  targets: () => readonly StreamTarget[],
  log: Logger,
): () => Promise<boolean> {
  let failing = false
  const snapshot = cached(async (): Promise<RedisSnapshot | null> => {
    try {
      const client = redis()
      const [streams, info] = await Promise.all([readStreamStats(client, targets()), client.info('memory')])
      if (failing) log.info('metrics: redis answers again')
      failing = false
      return { streams, memory: parseMemoryInfo(info) }
    } catch (err) {
      if (!failing) log.warn({ err }, 'metrics: redis did not answer; stream gauges left empty')
      failing = true
      return null
    }
  }, REDIS_CACHE_MS)

  const perConsumer = (name: string, help: string, value: (s: StreamStats) => number | null) =>
    new Gauge({
      name,
      help,
      labelNames: CONSUMER_LABELS,
      registers: [registry],
      async collect() {
        const snap = await snapshot()
        this.reset()
        for (const s of snap?.streams ?? []) {
          const v = value(s)
          if (v !== null) this.set({ consumer: s.consumer, stream: s.stream, group: s.group }, v)
        }
      },
    })

  perConsumer('ackstate_stream_length', 'Entries in the stream (XLEN).', (s) => s.length)
  perConsumer(
    'ackstate_group_lag',
    'Entries in the stream not yet delivered to the group (XINFO GROUPS lag); absent when Redis cannot tell.',
    (s) => s.lag,
  )
  perConsumer(
    'ackstate_group_pending',
    'Entries delivered to the group and not acked: in flight or waiting for a retry (the PEL).',
    (s) => (s.groupExists ? s.pending : null),
  )
  perConsumer(
    'ackstate_pending_oldest_age_seconds',
    "Age of the group's oldest pending entry, from its entry id's time; 0 when nothing is pending.",
    (s) => (s.groupExists ? (s.oldestPendingAgeMs ?? 0) / 1000 : null),
  )
  perConsumer('ackstate_dlq_length', 'Entries in the dead-letter stream {stream}:dlq.', (s) => s.dlqLength)

  const memory = (name: string, help: string, pick: (m: RedisSnapshot['memory']) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        const snap = await snapshot()
        // A label-less gauge resets to 0; remove() leaves it empty instead while Redis is silent.
        if (snap) this.set(pick(snap.memory))
        else this.remove()
      },
    })
  memory('ackstate_redis_memory_used_bytes', 'Memory Redis uses (INFO used_memory).', (m) => m.used)
  memory('ackstate_redis_memory_max_bytes', 'Redis maxmemory; 0 when unlimited.', (m) => m.max)
  return async () => (await snapshot()) !== null
}
