import { QueryTypes, type Sequelize, type Transaction } from 'sequelize'
import { errorCodes } from './errors.js'

/**
 * The SQL of the message backup (redis_message_backup), one function per operation. Every statement
 * handles a whole batch: one INSERT per publish batch, one UPDATE per ack batch — a statement per
 * message caps out at a few thousand rows per second.
 */

export interface BackupRow {
  messageId: string
  stream: string
  payload: string
  headers: Record<string, string>
  fields: Record<string, string>
}

const INSERT = `INSERT INTO redis_message_backup (message_id, stream, payload, headers, fields, publisher_id, status)
     SELECT m, s, p, h::jsonb, f::jsonb, $6, $7 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
       AS t(m, s, p, h, f)`

/** A re-published id (a producer retry, a replay) is reset under the new owner, so it is sent again. */
const UPSERT = `${INSERT}
     ON CONFLICT (message_id) DO UPDATE SET
       stream = EXCLUDED.stream, payload = EXCLUDED.payload, headers = EXCLUDED.headers,
       fields = EXCLUDED.fields, publisher_id = EXCLUDED.publisher_id, status = EXCLUDED.status,
       created_at = now(), sent_at = NULL, acked_at = NULL`

/** SQLSTATE of a unique violation: the batch holds an id that has a row already. */
const UNIQUE_VIOLATION = '23505'

/**
 * Inserts the rows of one publish batch as pending (or `sent`, for a sender that commits them only
 * once it is sure to XADD), owned by `publisherId`. A row whose id exists (a producer retry, a
 * replay) is reset under the new owner, so it is sent again too.
 *
 * Outside a transaction a plain INSERT goes first and the upsert only runs when it hits an existing
 * id: ON CONFLICT's speculative insertion costs ~30% of the statement on every batch otherwise. In a
 * caller's transaction a failed statement would abort it, so the upsert runs directly.
 */
export async function insertBackups(
  store: Sequelize,
  rows: BackupRow[],
  publisherId: string,
  transaction?: Transaction,
  status: 'pending' | 'sent' = 'pending',
): Promise<void> {
  if (rows.length === 0) return
  const bind = [
    rows.map((r) => r.messageId),
    rows.map((r) => r.stream),
    rows.map((r) => r.payload),
    rows.map((r) => JSON.stringify(r.headers)),
    rows.map((r) => JSON.stringify(r.fields)),
    publisherId,
    status,
  ]
  if (transaction) {
    await store.query(UPSERT, { bind, transaction, type: QueryTypes.INSERT })
    return
  }
  try {
    await store.query(INSERT, { bind, type: QueryTypes.INSERT })
  } catch (err) {
    if (!errorCodes(err).includes(UNIQUE_VIOLATION)) throw err
    await store.query(UPSERT, { bind, type: QueryTypes.INSERT })
  }
}

/**
 * Gives up ownership of rows whose XADD failed, so the republisher re-sends them after its short
 * delay instead of waiting for the owner to look stale. Best effort: if this fails too, the rows are
 * still pending and are re-sent once they are stale.
 */
export async function disownBackups(store: Sequelize, messageIds: string[]): Promise<void> {
  await store.query(
    `UPDATE redis_message_backup SET publisher_id = NULL WHERE message_id = ANY($1) AND status = 'pending'`,
    { bind: [messageIds], type: QueryTypes.UPDATE },
  )
}

/** Marks rows whose XADD succeeded as sent; only pending ones (a fast consumer may have acked already). */
export async function markSent(store: Sequelize, messageIds: string[]): Promise<void> {
  if (messageIds.length === 0) return
  await store.transaction(async (transaction) => {
    await store.query('SET LOCAL synchronous_commit = off', { transaction })
    await store.query(
      `UPDATE redis_message_backup SET status = 'sent', sent_at = now()
       WHERE message_id = ANY($1) AND status = 'pending'`,
      { bind: [messageIds], transaction, type: QueryTypes.UPDATE },
    )
  })
}

/**
 * Hands a closing publisher's rows over: its pending rows reached Redis (every failed XADD was
 * disowned, or is listed in `except`), so they are marked sent before its heartbeat goes and the
 * republisher would otherwise check them all against their streams. One statement; the cost is the
 * backlog still unconsumed, not everything published.
 */
export async function markOwnSent(store: Sequelize, publisherId: string, except: string[]): Promise<number> {
  const [, affected] = (await store.query(
    `UPDATE redis_message_backup SET status = 'sent', sent_at = now()
     WHERE publisher_id = $1 AND status = 'pending' AND NOT (message_id = ANY($2))`,
    { bind: [publisherId, except], type: QueryTypes.UPDATE },
  )) as unknown as [unknown, number]
  return affected
}

/**
 * Marks handled messages acked and dead-lettered ones dead, in one transaction. The commit is
 * asynchronous (synchronous_commit off): a confirmation lost in a crash costs at worst a re-send that
 * deduplication absorbs, never a message — the publish-side insert stays durable.
 */
export async function confirmBackups(store: Sequelize, acked: string[], dead: string[]): Promise<void> {
  if (acked.length === 0 && dead.length === 0) return
  await store.transaction(async (transaction) => {
    await store.query('SET LOCAL synchronous_commit = off', { transaction })
    if (acked.length > 0) {
      await store.query(
        `UPDATE redis_message_backup SET status = 'acked', acked_at = now()
         WHERE message_id = ANY($1) AND status <> 'acked'`,
        { bind: [acked], transaction, type: QueryTypes.UPDATE },
      )
    }
    if (dead.length > 0) {
      await store.query(
        `UPDATE redis_message_backup SET status = 'dead', acked_at = now()
         WHERE message_id = ANY($1) AND status <> 'dead'`,
        { bind: [dead], transaction, type: QueryTypes.UPDATE },
      )
    }
  })
}

/** Records failed attempts durably (the PEL loses them on a failover): the larger count wins. */
export async function recordAttempts(store: Sequelize, attempts: Map<string, number>): Promise<void> {
  if (attempts.size === 0) return
  await store.query(
    `UPDATE redis_message_backup b SET attempts = GREATEST(b.attempts, t.n)
     FROM unnest($1::text[], $2::int[]) AS t(id, n) WHERE b.message_id = t.id`,
    { bind: [[...attempts.keys()], [...attempts.values()]], type: QueryTypes.UPDATE },
  )
}

/** Durable attempt counts of these messages (absent: no backup row). */
export async function loadAttempts(store: Sequelize, messageIds: string[]): Promise<Map<string, number>> {
  if (messageIds.length === 0) return new Map()
  const rows = await store.query<{ message_id: string; attempts: number }>(
    `SELECT message_id, attempts FROM redis_message_backup WHERE message_id = ANY($1) AND attempts > 0`,
    { bind: [messageIds], type: QueryTypes.SELECT },
  )
  return new Map(rows.map((r) => [r.message_id, r.attempts]))
}
