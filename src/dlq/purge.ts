import type { RedisClient } from '../redis/connect.js'
import { classify } from '../redis/errors.js'
import { pipelineBySlot } from '../redis/pipelineBySlot.js'
import type { ReadLetter } from './read.js'
import { base, type DlqActionResult } from './replay.js'

/** Deletes dead letters from their DLQ streams (one pipelined XDEL per entry, to report each). */
export async function purgeLetters(redis: RedisClient, letters: ReadLetter[]): Promise<DlqActionResult[]> {
  if (letters.length === 0) return []
  // One pipeline, or one per slot on a Cluster.
  const replies = await pipelineBySlot(
    redis,
    letters,
    (read) => read.key,
    (pipeline, { key, letter }) => pipeline.xdel(key, letter.dlqEntryId),
  )
  return letters.map((read, i) => {
    const [err, deleted] = replies[i]?.[0] ?? [new Error('no reply from Redis'), 0]
    if (err) throw classify(err, `XDEL ${read.key} ${read.letter.dlqEntryId}`)
    return deleted === 1
      ? { ...base(read), status: 'purged' }
      : { ...base(read), status: 'missing', reason: 'no longer in the dead-letter stream' }
  })
}
