import type { Entry } from '../../machines/types.js'

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
  return { id: id ?? entryId, entryId, payload, headers, fields, attempt }
}

/** Headers that are not a JSON object of strings are kept, untouched, as the `headers` field. */
function parseHeaders(raw: string, fields: Record<string, string>): Record<string, string> {
  try {
    const parsed: unknown = JSON.parse(raw)
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
      const out: Record<string, string> = {}
      for (const [k, v] of Object.entries(parsed)) out[k] = typeof v === 'string' ? v : JSON.stringify(v)
      return out
    }
  } catch {
    // fall through
  }
  fields.headers = raw
  return {}
}

/** All entries of a one-stream XREADGROUP reply. */
export function decodeReply(reply: StreamReply): Entry[] {
  if (!reply || reply.length === 0) return []
  const entries = reply[0]![1]
  return entries.map(([entryId, flat]) => decodeEntry(entryId, flat))
}
