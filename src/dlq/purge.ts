import type { Redis } from 'ioredis'
import { classify } from '../redis/errors.js'
import type { ReadLetter } from './read.js'
import { base, type DlqActionResult } from './replay.js'

/** Deletes dead letters from their DLQ streams (one pipelined XDEL per entry, to report each). */
export async function purgeLetters(redis: Redis, letters: ReadLetter[]): Promise<DlqActionResult[]> {
  if (letters.length === 0) return []
  const pipeline = redis.pipeline()
  for (const { key, letter } of letters) pipeline.xdel(key, letter.dlqEntryId)
  let replies: [Error | null, unknown][] | null
  try {
    replies = await pipeline.exec()
  } catch (err) {
    throw classify(err, 'XDEL')
  }
  return letters.map((read, i) => {
    const [err, deleted] = replies?.[i] ?? [new Error('no reply from Redis'), 0]
    if (err) throw classify(err, `XDEL ${read.key} ${read.letter.dlqEntryId}`)
    return deleted === 1
      ? { ...base(read), status: 'purged' }
      : { ...base(read), status: 'missing', reason: 'no longer in the dead-letter stream' }
  })
}
