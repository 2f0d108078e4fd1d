import type { Entry, HandlerFailure, Outcome, SettleInput } from '../../machines/types.js'
import { decodeEntry } from '../redis/entries.js'

/**
 * A dead letter: a message that failed for good, with why and where. It is written to `{stream}:dlq`
 * as the original entry's fields plus `dlq.*` fields, and (store on) as a `dead_letter` row.
 */
export interface DeadLetter {
  /** Message id (the entry's `id` field, else its entry id). */
  id: string
  /** Stream the message came from and is replayed to. */
  stream: string
  group: string
  /** Redis consumer name of the daemon that gave up on it. */
  consumer: string
  /** The original entry id. */
  entryId: string
  /** `payload` as it was stored, or null when the entry had none (or was deleted). */
  payload: string | null
  /** `base64`: `payload` holds the stored bytes base64-encoded (a `binary` consumer's letter). */
  payloadEncoding?: 'base64'
  headers: Record<string, string>
  /** The entry's other fields, untouched. */
  fields: Record<string, string>
  /** Why it died: the handler's error, or the reason it never ran (ACK_ERR_PAYLOAD_*, ACK_ERR_ENTRY_GONE). */
  error: { name: string; code: string; message: string }
  /** Deliveries it had. */
  attempts: number
  /** ISO 8601. */
  failedAt: string
}

/** A dead letter as read back from a `{stream}:dlq` stream. */
export interface DlqEntry extends DeadLetter {
  /** Entry id in the dead-letter stream (ackstate dlq … --id accepts it as well as the message id). */
  dlqEntryId: string
}

/** Fields of a DLQ entry that ackstate adds; replay publishes every other field. */
export const DLQ_PREFIX = 'dlq.'

const UNKNOWN_ERROR: HandlerFailure = { name: 'Error', code: 'ACK_ERR_HANDLER_FAILED', message: 'unknown' }

/** The dead letters of a batch's dead outcomes (matched to their entries by entry id). */
export function lettersOf(input: SettleInput, failedAt: string): DeadLetter[] {
  const entries = new Map<string, Entry>(input.entries.map((e) => [e.entryId, e]))
  return input.outcomes.map((o: Outcome) => {
    const entry = entries.get(o.entryId)
    const error = 'error' in o ? o.error : UNKNOWN_ERROR
    return {
      id: o.id,
      stream: input.stream,
      group: input.group,
      consumer: input.consumer,
      entryId: o.entryId,
      payload: entry?.payload ?? null,
      ...(entry?.payloadEncoding ? { payloadEncoding: entry.payloadEncoding } : {}),
      headers: entry?.headers ?? {},
      fields: entry?.fields ?? {},
      error: { name: error.name, code: error.code, message: error.message },
      attempts: 'attempt' in o ? o.attempt : 1,
      failedAt,
    }
  })
}

/**
 * encodeLetter for the XADD itself: a `binary` consumer's payload goes back as the bytes it was
 * (right after `id`, like every letter's payload).
 */
export function letterXadd(letter: DeadLetter): (string | Buffer)[] {
  const fields: (string | Buffer)[] = encodeLetter(letter)
  if (letter.payloadEncoding === 'base64' && letter.payload !== null)
    fields[3] = Buffer.from(letter.payload, 'base64')
  return fields
}

/** The XADD field list of a dead letter: the original fields, then the `dlq.*` ones. */
export function encodeLetter(letter: DeadLetter): string[] {
  const fields = ['id', letter.id]
  if (letter.payload !== null) fields.push('payload', letter.payload)
  if (Object.keys(letter.headers).length > 0) fields.push('headers', JSON.stringify(letter.headers))
  for (const [k, v] of Object.entries(letter.fields)) fields.push(k, v)
  fields.push(
    'dlq.error',
    JSON.stringify(letter.error),
    'dlq.attempts',
    String(letter.attempts),
    'dlq.stream',
    letter.stream,
    'dlq.group',
    letter.group,
    'dlq.consumer',
    letter.consumer,
    'dlq.entryId',
    letter.entryId,
    'dlq.failedAt',
    letter.failedAt,
  )
  return fields
}

/** Splits a DLQ entry's flat field list into the original fields (in order) and the `dlq.*` ones. */
export function splitFields(flat: string[]): { original: string[]; meta: Record<string, string> } {
  const original: string[] = []
  const meta: Record<string, string> = {}
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const key = flat[i]!
    if (key.startsWith(DLQ_PREFIX)) meta[key.slice(DLQ_PREFIX.length)] = flat[i + 1]!
    else original.push(key, flat[i + 1]!)
  }
  return { original, meta }
}

/**
 * Reads a DLQ entry back. Entries written by hand or by an older version may lack `dlq.*` fields:
 * they read as attempts 0, the stream the DLQ belongs to, and an error with code `unknown`.
 */
export function decodeLetter(stream: string, dlqEntryId: string, flat: string[]): DlqEntry {
  const { original, meta } = splitFields(flat)
  const entryId = meta.entryId ?? dlqEntryId
  const { id, payload, headers, fields } = decodeEntry(entryId, original)
  return {
    stream: meta.stream ?? stream,
    dlqEntryId,
    id,
    entryId,
    group: meta.group ?? '',
    consumer: meta.consumer ?? '',
    error: parseError(meta.error),
    attempts: Number(meta.attempts ?? 0) || 0,
    failedAt: meta.failedAt ?? new Date(Number(dlqEntryId.split('-')[0])).toISOString(),
    payload,
    headers,
    fields,
  }
}

function parseError(raw: string | undefined): DeadLetter['error'] {
  try {
    const e = JSON.parse(raw ?? '') as Partial<DeadLetter['error']>
    return {
      name: String(e.name ?? 'Error'),
      code: String(e.code ?? 'unknown'),
      message: String(e.message ?? ''),
    }
  } catch {
    return { name: 'Error', code: 'unknown', message: raw ?? '' }
  }
}
