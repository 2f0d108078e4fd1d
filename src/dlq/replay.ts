import type { RedisClient } from '../redis/connect.js'
import { PRIOR_ATTEMPTS_HEADER } from '../redis/entries.js'
import { classify } from '../redis/errors.js'
import { pipelineBySlot } from '../redis/pipelineBySlot.js'
import { splitFields } from './letter.js'
import type { ReadLetter } from './read.js'

/** What happened to one dead letter in `replay` or `purge`. */
export interface DlqActionResult {
  stream: string
  dlqEntryId: string
  id: string
  status: 'replayed' | 'purged' | 'skipped' | 'missing'
  /** replayed: the new entry in the stream. */
  entryId?: string
  /** skipped / missing: why. */
  reason?: string
}

/**
 * Moves one dead letter back, atomically: if the DLQ entry is still there, XADD its original fields
 * to the stream (a new entry, so delivery count 1: a fresh attempt count), then XDEL it from the DLQ.
 * A failed XADD aborts the script before the XDEL. Both keys share the stream's hash slot (`orders`,
 * `{orders}:dlq`). Two operators replaying at once move each letter once: the second finds it gone.
 */
const MOVE = `
if #redis.call('XRANGE', KEYS[2], ARGV[1], ARGV[1]) == 0 then return false end
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
redis.call('XDEL', KEYS[2], ARGV[1])
return id`

/** Replaying it could not help: its fields were lost before it was ever handled. */
const NOTHING_TO_REPLAY = 'ACK_ERR_ENTRY_GONE'

/**
 * Re-publishes dead letters to their streams with their original id, payload, headers and fields
 * (the `dlq.*` fields dropped, see replayFields), one pipelined round trip. Every group of the stream sees the new
 * entry; groups that completed the id within their `dedupeTtlMs` ack it without running.
 */
export async function replayLetters(redis: RedisClient, letters: ReadLetter[]): Promise<DlqActionResult[]> {
  const moves = letters.filter((read) => read.letter.error.code !== NOTHING_TO_REPLAY)
  const moved = new Map<ReadLetter, unknown>()
  if (moves.length > 0) {
    // One pipeline, or one per slot on a Cluster.
    const replies = await pipelineBySlot(
      redis,
      moves,
      (read) => read.stream,
      (pipeline, read) =>
        pipeline.eval(MOVE, 2, read.stream, read.key, read.letter.dlqEntryId, ...replayArgs(read)),
    )
    moves.forEach((read, i) => {
      const [err, entryId] = replies[i]?.[0] ?? [new Error('no reply from Redis'), null]
      if (err) throw classify(err, `replay ${read.letter.dlqEntryId} from ${read.key}`)
      moved.set(read, entryId)
    })
  }
  return letters.map((read): DlqActionResult => {
    if (!moved.has(read)) return { ...base(read), status: 'skipped', reason: LOST }
    const entryId = moved.get(read)
    return typeof entryId === 'string'
      ? { ...base(read), status: 'replayed', entryId }
      : { ...base(read), status: 'missing', reason: 'no longer in the dead-letter stream' }
  })
}

const LOST = 'the entry was deleted before it was handled; its payload is lost (purge it)'

/**
 * The original fields of a letter, as published again. A message the republisher re-sent carries its
 * used-up attempts in the `ackstate-attempts` header; that header is dropped, so the replay starts
 * from attempt 1. Every other byte is kept as it was.
 */
/** replayFields, with the payload sent back as the bytes it was stored as (binary stays exact). */
function replayArgs({ flat, raw }: ReadLetter): (string | Buffer)[] {
  const fields: (string | Buffer)[] = replayFields(flat)
  const from = flat.findIndex((f, i) => i % 2 === 0 && f === 'payload')
  const to = fields.findIndex((f, i) => i % 2 === 0 && f === 'payload')
  if (from >= 0 && to >= 0) fields[to + 1] = raw[from + 1]!
  return fields
}

export function replayFields(flat: string[]): string[] {
  const { original } = splitFields(flat)
  for (let i = 0; i + 1 < original.length; i += 2) {
    if (original[i] !== 'headers' || !original[i + 1]!.includes(PRIOR_ATTEMPTS_HEADER)) continue
    try {
      const headers = JSON.parse(original[i + 1]!) as Record<string, unknown>
      delete headers[PRIOR_ATTEMPTS_HEADER]
      original[i + 1] = JSON.stringify(headers)
    } catch {
      // Not JSON: not ackstate's headers, pass them through.
    }
  }
  return original
}

/** The fields every result has. */
export function base({ stream, letter }: ReadLetter): Pick<DlqActionResult, 'stream' | 'dlqEntryId' | 'id'> {
  return { stream, dlqEntryId: letter.dlqEntryId, id: letter.id }
}
