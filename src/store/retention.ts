import { QueryTypes, type Sequelize } from 'sequelize'

export interface RetentionSettings {
  /** Acked and dead backup rows older than this are deleted. */
  ackedMs: number
  /** Delivered delay rows older than this are deleted. */
  deliveredMs: number
  /** Rows deleted per statement: short transactions, no long lock on the table. */
  batchSize: number
}

/** Most statements per table per pass, so one pass never runs for long. */
const MAX_BATCHES = 20

/**
 * Deletes settled rows past their retention, in batches. The scans have no index of their own (an
 * index on acked_at would cost every confirmation an index write); they run once per retention
 * interval, not per message.
 */
export async function pruneSettled(
  store: Sequelize,
  settings: RetentionSettings,
): Promise<{ backup: number; delay: number; processed: number }> {
  const backup = await inBatches(
    store,
    `DELETE FROM redis_message_backup WHERE ctid IN (
       SELECT ctid FROM redis_message_backup
       WHERE status IN ('acked', 'dead') AND acked_at < now() - make_interval(secs => $1::double precision / 1000)
       LIMIT $2) RETURNING 1`,
    settings.ackedMs,
    settings.batchSize,
  )
  const delay = await inBatches(
    store,
    `DELETE FROM delay_message WHERE ctid IN (
       SELECT ctid FROM delay_message
       WHERE status = 'delivered' AND delivered_at < now() - make_interval(secs => $1::double precision / 1000)
       LIMIT $2) RETURNING 1`,
    settings.deliveredMs,
    settings.batchSize,
  )
  // exactlyOnce() records: kept as long as acked backup rows, past any re-delivery of their message.
  const processed = await inBatches(
    store,
    `DELETE FROM processed_message WHERE ctid IN (
       SELECT ctid FROM processed_message
       WHERE processed_at < now() - make_interval(secs => $1::double precision / 1000)
       LIMIT $2) RETURNING 1`,
    settings.ackedMs,
    settings.batchSize,
  )
  return { backup, delay, processed }
}

async function inBatches(store: Sequelize, sql: string, ageMs: number, batchSize: number): Promise<number> {
  let total = 0
  for (let i = 0; i < MAX_BATCHES; i++) {
    const deletedRows = await store.query(sql, { bind: [ageMs, batchSize], type: QueryTypes.SELECT })
    const deleted = deletedRows.length
    total += deleted
    if (deleted < batchSize) break
  }
  return total
}
