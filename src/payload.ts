import type { Entry, HandlerFailure } from '../machines/types.js'
import type { PayloadFormat } from './consumerConfig.js'

/** What a consumer accepts in the `payload` field (its `payloadFormat` and `maxPayloadBytes`). */
export interface PayloadRules {
  /** Consumer name, for the messages. */
  name: string
  payloadFormat: PayloadFormat
  maxPayloadBytes: number
}

/**
 * Why an entry cannot be handed to its handler, or null when it can. The reasons, in order: the entry
 * was deleted while pending (ACK_ERR_ENTRY_GONE), its payload is over `maxPayloadBytes`
 * (ACK_ERR_PAYLOAD_TOO_LARGE), and for a `json` consumer, it has no payload (ACK_ERR_PAYLOAD_MISSING)
 * or one that does not parse (ACK_ERR_PAYLOAD_INVALID).
 *
 * A `text` consumer takes an entry without a payload field (`payload: null`): entries written by any
 * client are consumed, and `XADD s * event signup user 42` is a fine message. Cheap on the hot path:
 * a text payload costs a length comparison (UTF-8 bytes are counted only when the length alone
 * cannot decide) and JSON.parse runs only for `json` consumers.
 */
export function entryProblem(entry: Entry, rules: PayloadRules): HandlerFailure | null {
  if (entry.gone) {
    return failure(
      'HandlerError',
      'ACK_ERR_ENTRY_GONE',
      `entry ${entry.entryId} was deleted from the stream while pending; its payload is lost`,
    )
  }
  const { payload } = entry
  if (payload === null) {
    if (rules.payloadFormat !== 'json') return null
    return failure(
      'PayloadError',
      'ACK_ERR_PAYLOAD_MISSING',
      `entry ${entry.entryId} (message ${entry.id}) has no payload field, and consumer "${rules.name}" ` +
        'declares payloadFormat "json". Publish it with a payload, or set payloadFormat to "text" to ' +
        'receive entries without one; then `ackstate dlq replay` it.',
    )
  }
  const bytes =
    entry.payloadEncoding === 'base64'
      ? Buffer.byteLength(payload, 'base64')
      : payloadBytes(payload, rules.maxPayloadBytes)
  if (bytes > rules.maxPayloadBytes) {
    return failure(
      'PayloadError',
      'ACK_ERR_PAYLOAD_TOO_LARGE',
      `payload of entry ${entry.entryId} (message ${entry.id}) is ${bytes} bytes, over maxPayloadBytes ` +
        `(${rules.maxPayloadBytes}) of consumer "${rules.name}". Raise maxPayloadBytes, or store large ` +
        'bodies elsewhere and publish a reference; then `ackstate dlq replay` it.',
    )
  }
  if (rules.payloadFormat === 'json') {
    try {
      JSON.parse(payload)
    } catch (err) {
      return failure(
        'PayloadError',
        'ACK_ERR_PAYLOAD_INVALID',
        `payload of entry ${entry.entryId} (message ${entry.id}) is not valid JSON ` +
          `(${(err as Error).message}), and consumer "${rules.name}" declares payloadFormat "json". ` +
          'Fix the producer, or set payloadFormat to "text" and parse it in the handler.',
      )
    }
  }
  return null
}

/**
 * The payload's UTF-8 size when it is over `max`, else any number up to `max`. A UTF-16 code unit takes
 * 1 to 3 UTF-8 bytes, so a payload of at most max / 3 code units fits without counting its bytes.
 */
function payloadBytes(payload: string, max: number): number {
  if (payload.length > max) return Buffer.byteLength(payload, 'utf8')
  if (payload.length * 3 <= max) return payload.length
  return Buffer.byteLength(payload, 'utf8')
}

function failure(name: string, code: string, message: string): HandlerFailure {
  return { name, code, message }
}
