import type { Transaction } from 'sequelize'
import { PublishError } from './errors.js'
import { uuidv7 } from './ids.js'
import type { BackupRow } from './store/backup.js'

/**
 * The message side of publishing, without I/O: the entry format (ARCHITECTURE.md, "Wire format"),
 * its validation, and when a delayed message is due.
 */
/** A message to publish, in the wire format of ARCHITECTURE.md. */
export interface PublishMessage {
  stream: string
  /** The body: a string as it is, anything else JSON-encoded. */
  payload: unknown
  /** Producer-assigned message id; a UUIDv7 when omitted. Used for deduplication. */
  id?: string
  /** String headers (content-type, traceparent…); `published-at` is added. */
  headers?: Record<string, string>
  /** Extra fields, passed through to the handler untouched. */
  fields?: Record<string, string>
}

/** Options of one publish. */
export interface PublishOptions {
  /**
   * A caller's sequelize transaction (transactional outbox): the backup rows are written in it and
   * the messages are sent only after it commits.
   */
  transaction?: Transaction
  /** Deliver after this many ms (needs the store): the message waits in delay_message until due. */
  delayMs?: number
  /** Deliver at this time (a Date, epoch ms or an ISO string); a past time delivers now. */
  deliverAt?: Date | number | string
}

/** The longest delay accepted: a year. Anything longer is a unit mistake (seconds given as ms). */
export const MAX_DELAY_MS = 366 * 24 * 3600 * 1000

/**
 * When a delayed publish is due, or null to send now. Throws PublishError for NaN, negative, absurd
 * or unparseable values, saying what to pass instead.
 */
export function dueTime(options: PublishOptions, now: Date): Date | null {
  const fail = (what: string): never => {
    throw new PublishError('ACK_ERR_PUBLISH_INVALID', `Cannot publish: ${what}.`)
  }
  if (options.delayMs !== undefined && options.deliverAt !== undefined) {
    fail('give either delayMs or deliverAt, not both')
  }
  let at: number
  if (options.delayMs !== undefined) {
    const ms = options.delayMs
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
      fail(`delayMs must be a number of ms ≥ 0, got ${String(ms)}`)
    }
    at = now.getTime() + ms
  } else if (options.deliverAt !== undefined) {
    at = new Date(options.deliverAt).getTime()
    if (!Number.isFinite(at))
      fail(
        `deliverAt is not a time: ${JSON.stringify(options.deliverAt)}; pass a Date, epoch ms or an ISO string`,
      )
  } else {
    return null
  }
  if (at - now.getTime() > MAX_DELAY_MS) {
    fail(`the delivery time ${new Date(at).toISOString()} is more than a year away; check the unit (ms)`)
  }
  return at <= now.getTime() ? null : new Date(at)
}

export interface PublishResult {
  id: string
  stream: string
  /** Entry id Redis assigned; null for a publish in a transaction (sent after the commit) or a delayed one. */
  entryId: string | null
  /** For a delayed publish: when it is due (ISO). */
  deliverAt?: string
}

const RESERVED = new Set(['id', 'payload', 'headers'])
const NUL = '\u0000'

function fail(what: string): never {
  throw new PublishError('ACK_ERR_PUBLISH_INVALID', `Cannot publish: ${what}.`)
}

// PostgreSQL text and jsonb cannot hold NUL: the backup row would fail, or later a dead letter's.
function refuseNul(what: string, value: string): void {
  if (!value.includes(NUL)) return
  fail(
    `${what} contains a NUL character (U+0000) at index ${value.indexOf(NUL)}, which PostgreSQL text cannot store; ` +
      'encode it first (e.g. base64, or pass an object: JSON escapes it) and publish again',
  )
}

/** Checks a message and returns the flat XADD field list. Throws PublishError saying what to fix. */
export function encodeMessage(message: PublishMessage, now = new Date()): { id: string; fields: string[] } {
  return batchEncoder(now)(message)
}

/**
 * encodeMessage for a batch published at one time: the time's text and the header JSON of a message
 * without headers of its own are made once per batch, not once per message.
 */
export function batchEncoder(now: Date): (message: PublishMessage) => { id: string; fields: string[] } {
  const nowMs = now.getTime()
  const publishedAt = now.toISOString()
  const plainHeaders = JSON.stringify({ 'published-at': publishedAt })
  return (message) => {
    if (typeof message !== 'object' || message === null) fail('the message must be an object')
    const { stream, payload: body } = message
    if (typeof stream !== 'string' || stream === '') fail('`stream` must be a non-empty string')
    if (body === undefined) fail('`payload` is missing; pass a string or a JSON-serialisable value')
    const id = message.id ?? uuidv7(nowMs)
    if (typeof id !== 'string' || id === '') fail('`id` must be a non-empty string when given')
    const payload = typeof body === 'string' ? body : (JSON.stringify(body) as string | undefined)
    if (typeof payload !== 'string') fail('`payload` cannot be JSON-encoded (a function or a symbol?)')
    refuseNul('`stream`', stream)
    refuseNul('`id`', id)
    refuseNul('`payload`', payload)
    const fields = [
      'id',
      id,
      'payload',
      payload,
      'headers',
      message.headers ? headersJson(message.headers, publishedAt) : plainHeaders,
    ]
    if (message.fields) {
      for (const [k, v] of Object.entries(message.fields)) {
        if (RESERVED.has(k)) fail(`field "${k}" is reserved; set it through the message's own \`${k}\``)
        if (typeof v !== 'string') fail(`field "${k}" must be a string, got ${typeof v}`)
        refuseNul('a header or field name', k)
        refuseNul(`header or field "${k}"`, v)
        fields.push(k, v)
      }
    }
    return { id, fields }
  }
}

/** The headers' JSON text: `published-at` first, unless the message sets its own. */
function headersJson(given: Record<string, string>, publishedAt: string): string {
  const headers: Record<string, string> = { 'published-at': publishedAt, ...given }
  for (const [k, v] of Object.entries(headers)) {
    if (typeof v !== 'string') fail(`header "${k}" must be a string, got ${typeof v}`)
    refuseNul('a header or field name', k)
    refuseNul(`header or field "${k}"`, v)
  }
  return JSON.stringify(headers)
}

/** The backup row of an encoded message (fields: id, payload, headers, then the extra ones). */
export function toRow(e: { id: string; stream: string; fields: string[] }): BackupRow {
  let extra: Record<string, string> | string = '{}'
  if (e.fields.length > 6) {
    extra = {}
    for (let i = 6; i < e.fields.length; i += 2) extra[e.fields[i]!] = e.fields[i + 1]!
  }
  // The header text is the entry's own JSON.stringify output: stored as it is, not parsed again.
  return { messageId: e.id, stream: e.stream, payload: e.fields[3]!, headers: e.fields[5]!, fields: extra }
}
