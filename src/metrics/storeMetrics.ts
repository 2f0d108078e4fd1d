import { Gauge, type Registry } from 'prom-client'
import type { Sequelize } from 'sequelize'
import type { Logger } from '../log.js'
import { readBackupPending, type BackupPending } from './backupStats.js'
import { cached } from './cache.js'

/** PostgreSQL is asked at most this often, however many scrapers. */
export const STORE_CACHE_MS = 5_000

/**
 * Backup rows not yet confirmed, read from PostgreSQL on scrape. A row stays pending from its
 * publish until the consumer's ack confirms it; many, or old, pending rows mean acks are not being
 * confirmed or messages never reached Redis (the republisher re-sends those). Registered only when
 * the daemon runs with the store. Returns the probe behind `ackstate_collector_up{source="postgresql"}`.
 */
export function registerStoreMetrics(
  registry: Registry,
  store: Sequelize,
  log: Logger,
): () => Promise<boolean> {
  let failing = false
  const snapshot = cached(async (): Promise<BackupPending | null> => {
    try {
      const result = await readBackupPending(store)
      if (failing) log.info('metrics: postgresql answers again')
      failing = false
      return result
    } catch (err) {
      if (!failing) log.warn({ err }, 'metrics: postgresql did not answer; backup gauges left empty')
      failing = true
      return null
    }
  }, STORE_CACHE_MS)

  const gauge = (name: string, help: string, pick: (b: BackupPending) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        const snap = await snapshot()
        if (snap) this.set(pick(snap))
        else this.remove()
      },
    })
  gauge(
    'ackstate_backup_pending_rows',
    'Rows of redis_message_backup still pending: published, not yet confirmed by an ack.',
    (b) => b.rows,
  )
  gauge(
    'ackstate_backup_oldest_pending_age_seconds',
    'Age of the oldest pending backup row; 0 when none is pending.',
    (b) => b.oldestAgeSeconds,
  )
  return async () => (await snapshot()) !== null
}
