import { addEntries } from '../redis/addEntries.js'
import type { RedisClient } from '../redis/connect.js'
import { QueryTypes, type Sequelize } from 'sequelize'
import { recoveryLockKey } from '../redis/keys.js'
import { resendFields, type StoredRow } from '../store/backup.js'

/** Stream entries read per XRANGE page, and missing rows re-sent per pipeline. */
const PAGE = 1_000
/**
 * Backup ids compared per round trip. Only the ids travel (full rows are read for the missing ones
 * alone), and a page this large keeps the scans few even when the planner has no statistics yet and
 * sorts a sequential scan for every page: 100k unacked rows took 8 s in pages of 1,000 full rows.
 */
const ID_PAGE = 10_000
/** How far Redis's clock (entry ids) may lag PostgreSQL's (created_at) when `since` narrows the read. */
const CLOCK_SKEW_MS = 10_000
/** Only one recovery per stream at a time (several consumers or daemons notice the same loss). */
const LOCK_TTL_MS = 60_000

/**
 * Rows the stream should still hold: every row not yet acked nor dead. Pending rows are included
 * however young: a publisher with a heartbeat leaves its rows pending once they are sent, so youth
 * says nothing about whether Redis had them. A row still between its commit and its XADD may be sent
 * twice; the copies carry one message id and deduplication runs the handler once.
 */
const UNACKED = `status IN ('pending', 'sent')`

export interface RecoverOptions {
  /** Only rows created at or after this time. */
  since?: Date
  /** Count what would be re-sent, send nothing. */
  dryRun?: boolean
  /** Called after each page with the rows checked and re-sent so far (a progress bar). */
  progress?: (checked: number, total: number, resent: number) => void
}

export interface RecoverResult {
  stream: string
  /** Backup rows not yet acked or dead-lettered. */
  checked: number
  /** Of those, the ones whose entry is no longer in the stream. */
  missing: number
  /** Re-sent (0 on a dry run). */
  resent: number
  /** False when another recovery of this stream was running. */
  ran: boolean
}

/**
 * Diffs the backup against the stream (seed 000's recovery procedure): every backup row of `stream`
 * that is neither acked nor dead and whose message id appears in no entry of the stream is XADDed
 * again, with its recorded attempts. Safe to run any time: a message still in the stream is left
 * alone, and one re-sent twice is deduplicated by its id.
 */
export async function recoverStream(
  redis: RedisClient,
  store: Sequelize,
  stream: string,
  options: RecoverOptions = {},
): Promise<RecoverResult> {
  const lock = recoveryLockKey(stream)
  if (!options.dryRun && (await redis.set(lock, String(process.pid), 'PX', LOCK_TTL_MS, 'NX')) === null) {
    return { stream, checked: 0, missing: 0, resent: 0, ran: false }
  }
  try {
    // Entry ids are timestamps: rows written since T have their entries after T (less clock skew).
    const from = options.since ? String(Math.max(0, options.since.getTime() - CLOCK_SKEW_MS)) : '-'
    const inStream = new Set<string>()
    let last = await readIdsInto(redis, stream, inStream, { start: from, end: '+' })
    const [{ total }] = (await store.query<{ total: string }>(
      `SELECT count(*) AS total FROM redis_message_backup
       WHERE stream = $1 AND created_at >= $2 AND ${UNACKED}`,
      { bind: [stream, (options.since ?? new Date(0)).toISOString()], type: QueryTypes.SELECT },
    )) as [{ total: string }]
    const result: RecoverResult = { stream, checked: 0, missing: 0, resent: 0, ran: true }
    let after = ''
    for (;;) {
      const page = await store.query<{ message_id: string }>(
        `SELECT message_id FROM redis_message_backup
         WHERE stream = $1 AND created_at >= $2 AND ${UNACKED} AND message_id > $3
         ORDER BY message_id LIMIT ${ID_PAGE}`,
        { bind: [stream, (options.since ?? new Date(0)).toISOString(), after], type: QueryTypes.SELECT },
      )
      if (page.length === 0) break
      after = page.at(-1)!.message_id
      let missing = page.map((r) => r.message_id).filter((id) => !inStream.has(id))
      if (missing.length > 0) {
        // Entries XADDed since the stream was read are no loss: a publish that committed its row and
        // sent its entry while this recovery ran. Only a row between its commit and its XADD right
        // now is still re-sent (a duplicate deduplication absorbs).
        const start = last === null ? from : `(${last}`
        last = (await readIdsInto(redis, stream, inStream, { start, end: '+' })) ?? last
        missing = missing.filter((id) => !inStream.has(id))
      }
      result.checked += page.length
      result.missing += missing.length
      if (!options.dryRun) {
        for (let i = 0; i < missing.length; i += PAGE) {
          result.resent += await resend(redis, store, stream, missing.slice(i, i + PAGE))
          await redis.pexpire(lock, LOCK_TTL_MS)
        }
      }
      options.progress?.(result.checked, Number(total), result.resent)
    }
    return result
  } finally {
    if (!options.dryRun) await redis.del(lock)
  }
}

/**
 * Message ids present in the stream (the `id` field, else the entry id) between two entry ids, read
 * page by page; with `wanted`, stops as soon as all of those were seen.
 */
export async function messageIdsIn(
  redis: RedisClient,
  stream: string,
  range: { start: string; end: string } = { start: '-', end: '+' },
  wanted?: ReadonlySet<string>,
): Promise<Set<string>> {
  const ids = new Set<string>()
  await readIdsInto(redis, stream, ids, range, wanted)
  return ids
}

/**
 * Adds the message ids of the stream's entries in `range` to `ids`; resolves with the last entry id
 * read (null: none), to read on from. With `wanted`, stops once all of those are in `ids`.
 */
async function readIdsInto(
  redis: RedisClient,
  stream: string,
  ids: Set<string>,
  range: { start: string; end: string },
  wanted?: ReadonlySet<string>,
): Promise<string | null> {
  let found = wanted ? [...wanted].filter((id) => ids.has(id)).length : 0
  let start = range.start
  let last: string | null = null
  for (;;) {
    const page = (await redis.xrange(stream, start, range.end, 'COUNT', PAGE)) as [string, string[]][]
    if (page.length > 0) last = page.at(-1)![0]
    for (const [entryId, flat] of page) {
      const at = flat.indexOf('id')
      const id = at >= 0 && at % 2 === 0 ? flat[at + 1]! : entryId
      if (ids.has(id)) continue
      ids.add(id)
      if (wanted?.has(id) && ++found === wanted.size) return last
    }
    if (page.length < PAGE) return last
    start = `(${last}`
  }
}

/** Re-sends the rows of these ids that are still unacked; resolves with how many it sent. */
async function resend(redis: RedisClient, store: Sequelize, stream: string, ids: string[]): Promise<number> {
  const rows = await store.query<StoredRow>(
    `SELECT message_id, payload, headers::jsonb AS headers, fields::jsonb AS fields, attempts
     FROM redis_message_backup WHERE message_id = ANY($1) AND ${UNACKED}`,
    { bind: [ids], type: QueryTypes.SELECT },
  )
  if (rows.length === 0) return 0
  const replies = await addEntries(redis, rows, () => stream, resendFields)
  const failed = replies.find(([err]) => err)?.[0]
  if (failed) throw failed
  await store.query(
    `UPDATE redis_message_backup SET status = 'sent', sent_at = now() WHERE message_id = ANY($1) AND status = 'pending'`,
    { bind: [rows.map((r) => r.message_id)], type: QueryTypes.UPDATE },
  )
  return rows.length
}
