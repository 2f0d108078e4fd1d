import { QueryTypes, type Sequelize, type Transaction } from 'sequelize'
import { ROW_COLUMNS, rowsJson, type BackupRow } from './backup.js'

/** The channel a stored delay is announced on (LISTEN/NOTIFY), with its due time in epoch ms. */
export const DELAY_CHANNEL = 'ackstate_delay'

export interface DelayRow extends BackupRow {
  deliverAt: Date
}

/**
 * Stores delayed messages (one INSERT per batch) and announces the earliest due time on
 * DELAY_CHANNEL; PostgreSQL delivers the notification only when the transaction commits, so a
 * scheduler never wakes for a row it cannot see yet.
 */
export async function insertDelays(
  store: Sequelize,
  rows: DelayRow[],
  transaction?: Transaction,
): Promise<void> {
  if (rows.length === 0) return
  const run = async (tx: Transaction) => {
    await store.query(
      `INSERT INTO delay_message (message_id, stream, payload, headers, fields, deliver_at)
       SELECT m, s, p, h::jsonb, f::jsonb, d FROM json_to_recordset($1::json) AS t(${ROW_COLUMNS}, d timestamptz)
       ON CONFLICT (message_id) DO UPDATE SET
         stream = EXCLUDED.stream, payload = EXCLUDED.payload, headers = EXCLUDED.headers,
         fields = EXCLUDED.fields, deliver_at = EXCLUDED.deliver_at, status = 'pending', delivered_at = NULL`,
      {
        bind: [rowsJson(rows)],
        transaction: tx,
        type: QueryTypes.INSERT,
      },
    )
    const earliest = Math.min(...rows.map((r) => r.deliverAt.getTime()))
    await store.query('SELECT pg_notify($1, $2)', {
      bind: [DELAY_CHANNEL, String(earliest)],
      transaction: tx,
    })
  }
  if (transaction) await run(transaction)
  else await store.transaction(run)
}

interface DueRow {
  message_id: string
  stream: string
  payload: string
  headers: Record<string, string>
  fields: Record<string, string>
  deliver_at: Date
}

/** Locks up to `limit` due rows for this transaction; other schedulers skip them. */
export function lockDue(store: Sequelize, limit: number, transaction: Transaction): Promise<DueRow[]> {
  return store.query<DueRow>(
    `SELECT message_id, stream, payload, headers, fields, deliver_at FROM delay_message
     WHERE status = 'pending' AND deliver_at <= now()
     ORDER BY deliver_at LIMIT $1
     FOR UPDATE SKIP LOCKED`,
    { bind: [limit], transaction, type: QueryTypes.SELECT },
  )
}

export async function markDelivered(
  store: Sequelize,
  ids: string[],
  transaction: Transaction,
): Promise<void> {
  await store.query(
    `UPDATE delay_message SET status = 'delivered', delivered_at = now() WHERE message_id = ANY($1)`,
    { bind: [ids], transaction, type: QueryTypes.UPDATE },
  )
}

/** ms until the earliest pending row is due (0 when overdue), or null when none is pending. */
export async function nextDueInMs(store: Sequelize): Promise<number | null> {
  const [row] = await store.query<{ ms: number | null }>(
    `SELECT (EXTRACT(EPOCH FROM (min(deliver_at) - now())) * 1000)::double precision AS ms
     FROM delay_message WHERE status = 'pending'`,
    { type: QueryTypes.SELECT },
  )
  if (!row || row.ms === null) return null
  return Math.max(0, Math.ceil(Number(row.ms)))
}
