import type { Entry } from '../../machines/types.js'

/** Header the republisher sets on a re-sent message: the attempts recorded before it was lost. */
export const PRIOR_ATTEMPTS_HEADER = 'ackstate-attempts'

/** The raw XREADGROUP reply in ioredis's (RESP2-shaped) form. */
export type StreamReply = [key: string, entries: [entryId: string, fields: string[] | null][]][] | null

/**
 * Decodes an entry into the wire format of ARCHITECTURE.md: `id` (else the entry id), `payload`,
 * `headers` (a JSON object of strings); every other field passes through. An entry whose fields are
 * gone (deleted or trimmed while pending) comes back with a null payload and no fields.
 */
export function decodeEntry(entryId: string, flat: string[] | null, attempt = 1): Entry {
  const fields: Record<string, string> = {}
  let id: string | undefined
  let payload: string | null = null
  let headers: Record<string, string> = {}
  if (flat) {
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const key = flat[i]!
      const value = flat[i + 1]!
      if (key === 'id') id = value
      else if (key === 'payload') payload = value
      else if (key === 'headers') headers = parseHeaders(value, fields)
      else fields[key] = value
    }
  }
  // A message re-sent from the backup carries the attempts it already used up.
  const prior = Number(headers[PRIOR_ATTEMPTS_HEADER] ?? 0)
  return { id: id ?? entryId, entryId, payload, headers, fields, attempt: attempt + (prior > 0 ? prior : 0) }
}

/**
 * The last header text parsed, and its headers: the entries of one publishMany() carry the very same
 * text (its `published-at`), so a read of a batch parses it once and copies the result.
 */
let lastRaw: string | undefined
let lastHeaders: Record<string, string> = {}

/** Headers that are not a JSON object of strings are kept, untouched, as the `headers` field. */
function parseHeaders(raw: string, fields: Record<string, string>): Record<string, string> {
  if (raw === lastRaw) return { ...lastHeaders }
  try {
    const parsed: unknown = JSON.parse(raw)
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
      const out: Record<string, string> = {}
      for (const [k, v] of Object.entries(parsed)) out[k] = typeof v === 'string' ? v : JSON.stringify(v)
      lastRaw = raw
      lastHeaders = out
      return { ...out }
    }
  } catch {
    // fall through
  }
  fields.headers = raw
  return {}
}

/** An XREADGROUP/XCLAIM entry read with the Buffer variants (`xreadgroupBuffer`, `xclaimBuffer`). */
export type BufferEntry = [entryId: Buffer, fields: Buffer[] | null]

/**
 * Decodes an entry read as Buffers for a `binary` consumer: the `payload` bytes are kept exact
 * (base64 in the Entry, `payloadEncoding: 'base64'`); every other field is UTF-8 text as usual.
 */
export function decodeBinaryEntry([entryId, flat]: BufferEntry, attempt = 1): Entry {
  const strings = flat?.map((b, i) =>
    i % 2 === 1 && flat[i - 1]!.toString('utf8') === 'payload' ? b.toString('base64') : b.toString('utf8'),
  )
  const entry = decodeEntry(entryId.toString('utf8'), strings ?? null, attempt)
  return entry.payload === null ? entry : { ...entry, payloadEncoding: 'base64' }
}

/** All entries of a one-stream XREADGROUP reply. */
export function decodeReply(reply: StreamReply): Entry[] {
  if (!reply || reply.length === 0) return []
  const entries = reply[0]![1]
  return entries.map(([entryId, flat]) => decodeEntry(entryId, flat))
}

/** A message as stored: what the publisher, the republisher, the delay scheduler and recovery XADD. */
export interface StoredMessage {
  id: string
  payload: string
  headers: Record<string, string>
  fields: Record<string, string>
  /** Attempts used up before this send (a re-send from the backup); carried in a header. */
  priorAttempts?: number
}

/** The flat XADD field list of the wire format: id, payload, headers, then the extra fields. */
export function entryFields(m: StoredMessage): string[] {
  const headers = m.priorAttempts
    ? { ...m.headers, [PRIOR_ATTEMPTS_HEADER]: String(m.priorAttempts) }
    : m.headers
  const fields = ['id', m.id, 'payload', m.payload, 'headers', JSON.stringify(headers)]
  for (const [k, v] of Object.entries(m.fields)) fields.push(k, v)
  return fields
}
