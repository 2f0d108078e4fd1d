import { QueryTypes, type Sequelize } from 'sequelize'
import { DLQ_PREFIX, type DeadLetter } from '../dlq/letter.js'

/**
 * The `dead_letter` table (migrations/0003-dead-letter.ts). One statement per batch either way:
 * the arrays are unnested server-side, so the SQL text is fixed whatever the batch size.
 */

const INSERT = `
INSERT INTO dead_letter
  (message_id, stream, "group", consumer, entry_id, payload, headers, fields, error, attempts, failed_at)
SELECT m, s, g, c, e, p, h::jsonb, f::jsonb, err::jsonb, a, t
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::text[], $8::text[], $9::text[], $10::int[], $11::timestamptz[])
  AS u(m, s, g, c, e, p, h, f, err, a, t)`

const NUL = '\u0000'
/** Marks, in a row's `fields`, a payload stored base64-encoded (its UTF-8 bytes) because it held a NUL. */
export const PAYLOAD_ENCODING_FIELD = `${DLQ_PREFIX}payloadEncoding`

const scrub = (s: string) => s.replaceAll(NUL, '\uFFFD')
const scrubAll = <T extends Record<string, unknown>>(o: T): T =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [scrub(k), typeof v === 'string' ? scrub(v) : v])) as T

/**
 * PostgreSQL text and jsonb cannot hold NUL (U+0000), and one such value fails the whole INSERT. An
 * entry written by another client may carry one: its payload is stored base64-encoded and marked
 * (`fields['dlq.payloadEncoding'] = 'base64'`), so the letter stays readable byte for byte; a NUL in
 * any other column becomes U+FFFD. The `{stream}:dlq` entry keeps the original as it was.
 */
export function storableLetter(l: DeadLetter): DeadLetter {
  const values = [l.id, l.stream, l.group, l.consumer, l.entryId, l.payload ?? '']
  const json = JSON.stringify([l.headers, l.fields, l.error])
  if (l.payloadEncoding === 'base64')
    return { ...l, fields: { ...l.fields, [PAYLOAD_ENCODING_FIELD]: 'base64' } }
  if (!values.some((v) => v.includes(NUL)) && !json.includes('\\u0000')) return l
  const encode = l.payload?.includes(NUL) ?? false
  return {
    ...l,
    id: scrub(l.id),
    stream: scrub(l.stream),
    group: scrub(l.group),
    consumer: scrub(l.consumer),
    entryId: scrub(l.entryId),
    payload: encode ? Buffer.from(l.payload!, 'utf8').toString('base64') : l.payload,
    headers: scrubAll(l.headers),
    fields: { ...scrubAll(l.fields), ...(encode ? { [PAYLOAD_ENCODING_FIELD]: 'base64' } : {}) },
    error: scrubAll(l.error),
  }
}

/** Inserts one row per dead letter, in one multi-row INSERT. */
export async function insertDeadLetters(sequelize: Sequelize, batch: DeadLetter[]): Promise<void> {
  if (batch.length === 0) return
  const letters = batch.map(storableLetter)
  const column = <T>(pick: (l: DeadLetter) => T) => letters.map(pick)
  await sequelize.query(INSERT, {
    type: QueryTypes.INSERT,
    bind: [
      column((l) => l.id),
      column((l) => l.stream),
      column((l) => l.group),
      column((l) => l.consumer),
      column((l) => l.entryId),
      column((l) => l.payload),
      column((l) => JSON.stringify(l.headers)),
      column((l) => JSON.stringify(l.fields)),
      column((l) => JSON.stringify(l.error)),
      column((l) => l.attempts),
      column((l) => l.failedAt),
    ],
  })
}

/** Identifies the row of one death: a replayed message gets a new entry id, so a second death a new row. */
export interface DeadLetterKey {
  stream: string
  group: string
  entryId: string
}

const MARK_REPLAYED = `
UPDATE dead_letter d SET replayed_at = now()
FROM unnest($1::text[], $2::text[], $3::text[]) AS k(s, g, e)
WHERE d.stream = k.s AND d."group" = k.g AND d.entry_id = k.e AND d.replayed_at IS NULL`

/** Sets `replayed_at` on the rows of these dead letters; resolves with how many rows changed. */
export async function markReplayed(sequelize: Sequelize, keys: DeadLetterKey[]): Promise<number> {
  if (keys.length === 0) return 0
  const [, affected] = await sequelize.query(MARK_REPLAYED, {
    type: QueryTypes.UPDATE,
    bind: [keys.map((k) => k.stream), keys.map((k) => k.group), keys.map((k) => k.entryId)],
  })
  return affected
}

const REARM_BACKUP = `
UPDATE redis_message_backup
   SET attempts = 0,
       status   = CASE status WHEN 'dead' THEN 'sent' ELSE status END,
       sent_at  = CASE status WHEN 'dead' THEN now() ELSE sent_at END,
       acked_at = CASE status WHEN 'dead' THEN NULL ELSE acked_at END
 WHERE message_id = ANY($1)`

/**
 * A replayed message is in its stream again: its backup row (when it was published through the
 * backup) restarts its recorded attempts at 0, or the durable count would dead-letter it again at
 * its first retry, and goes back from `dead` to `sent`, so recovery after a Redis data loss covers it.
 * This runs after the XADD, so the replay may already be handled and confirmed `acked`: that status
 * is kept (resetting the count of a handled message is harmless).
 */
export async function rearmBackups(sequelize: Sequelize, messageIds: string[]): Promise<number> {
  if (messageIds.length === 0) return 0
  const [, affected] = await sequelize.query(REARM_BACKUP, { type: QueryTypes.UPDATE, bind: [messageIds] })
  return affected
}
