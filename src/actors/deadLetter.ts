import type { Sequelize } from 'sequelize'
import { fromTask } from './fromTask.js'
import type { SettleInput } from '../../machines/types.js'
import { letterXadd, lettersOf, type DeadLetter } from '../dlq/letter.js'
import { deadLetterKey } from '../redis/keys.js'
import { classify } from '../redis/errors.js'
import { reviveError } from '../errors.js'
import type { Logger } from '../log.js'
import type { Resources } from '../resources.js'
import { insertDeadLetters } from '../store/deadLetters.js'

/**
 * Writes each dead message to `{stream}:dlq` with its original fields and why it died (one pipelined
 * round trip per batch), then, with the store on, inserts its `dead_letter` rows (one INSERT per
 * batch). The machine acks the originals only after this resolved.
 *
 * The stream entry is the durable record; the row is the queryable history. A failed XADD rejects
 * (the machine waits for Redis and tries again, nothing is acked); a failed INSERT only logs a
 * warning: refusing to ack would hold the batch in the PEL for as long as PostgreSQL is down, while
 * the letter is already safe in Redis. Such a letter has no row (`ackstate dlq` reads the stream).
 */
export const deadLetter = (res: Resources) =>
  fromTask<void, SettleInput>(async ({ input }) => {
    if (input.outcomes.length === 0) return
    const key = deadLetterKey(input.stream)
    const letters = lettersOf(input, new Date().toISOString())
    const pipeline = res.redis.pipeline()
    for (const letter of letters) pipeline.xadd(key, '*', ...letterXadd(letter))
    let results: [Error | null, unknown][] | null
    try {
      results = await pipeline.exec()
    } catch (err) {
      throw classify(err, `XADD ${key}`)
    }
    const failed = results?.find(([err]) => err)
    if (failed?.[0]) throw classify(failed[0], `XADD ${key}`)
    const log = res.logFor(input.name)
    if (res.store) await recordRows(res.store, letters, log)
    for (const o of input.outcomes) {
      log.error(
        { entryId: o.entryId, id: o.id, err: 'error' in o ? reviveError(o.error) : undefined },
        'message dead-lettered',
      )
    }
  })

async function recordRows(store: Sequelize, letters: DeadLetter[], log: Logger): Promise<void> {
  try {
    await insertDeadLetters(store, letters)
  } catch (err) {
    log.warn(
      { err, ids: letters.map((l) => l.id) },
      'dead letters not recorded in PostgreSQL; the dead-letter stream holds them',
    )
  }
}
