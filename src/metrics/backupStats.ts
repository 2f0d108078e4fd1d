import { QueryTypes, type Sequelize } from 'sequelize'

/** A scrape or `ackstate status` never waits on PostgreSQL longer than this. */
const STATEMENT_TIMEOUT_MS = 2_000

/** Backup rows not yet confirmed by an ack (status 'pending'). */
export interface BackupPending {
  rows: number
  /** Age of the oldest pending row; 0 when there is none. */
  oldestAgeSeconds: number
}

/**
 * Runs a read under a statement timeout. Both reads below use the partial index on pending rows
 * (`redis_message_backup_pending_idx`), so they stay cheap while few rows are pending; the timeout
 * bounds them when a big backlog makes the count slow.
 */
function bounded<T>(store: Sequelize, read: (opts: object) => Promise<T>): Promise<T> {
  return store.transaction(async (transaction) => {
    await store.query(`SET LOCAL statement_timeout = ${STATEMENT_TIMEOUT_MS}`, { transaction })
    return read({ transaction })
  })
}

/** All pending backup rows, whatever their stream (the republisher works on all of them). */
export function readBackupPending(store: Sequelize): Promise<BackupPending> {
  return bounded(store, async (opts) => {
    const [row] = await store.query<{ rows: string; oldest: string | null }>(
      `SELECT count(*) AS rows, EXTRACT(EPOCH FROM now() - min(created_at)) AS oldest
       FROM redis_message_backup WHERE status = 'pending'`,
      { ...opts, type: QueryTypes.SELECT },
    )
    return { rows: Number(row?.rows ?? 0), oldestAgeSeconds: Math.max(0, Number(row?.oldest ?? 0)) }
  })
}

/** Pending backup rows of each of these streams (a stream without any is absent). */
export function readBackupPendingByStream(
  store: Sequelize,
  streams: readonly string[],
): Promise<Map<string, number>> {
  return bounded(store, async (opts) => {
    const rows = await store.query<{ stream: string; rows: string }>(
      `SELECT stream, count(*) AS rows FROM redis_message_backup
       WHERE status = 'pending' AND stream = ANY($1) GROUP BY stream`,
      { ...opts, bind: [[...streams]], type: QueryTypes.SELECT },
    )
    return new Map(rows.map((r) => [r.stream, Number(r.rows)]))
  })
}
