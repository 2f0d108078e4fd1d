import { fromPromise } from 'xstate'
import type { Entry, Outcome, SettleInput } from '../../machines/types.js'
import { deadLetterKey } from '../redis/keys.js'
import { classify } from '../redis/errors.js'
import { reviveError } from '../errors.js'
import type { Resources } from '../resources.js'

/**
 * Writes each dead message to `{stream}:dlq` with its original fields and why it died; the machine
 * acks the originals only after this resolved. One pipelined round trip per batch.
 */
export const deadLetter = (res: Resources) =>
  fromPromise<void, SettleInput>(async ({ input }) => {
    if (input.outcomes.length === 0) return
    const key = deadLetterKey(input.stream)
    const pipeline = res.redis.pipeline()
    input.outcomes.forEach((o, i) => pipeline.xadd(key, '*', ...dlqFields(input, o, input.entries[i])))
    let results: [Error | null, unknown][] | null
    try {
      results = await pipeline.exec()
    } catch (err) {
      throw classify(err, `XADD ${key}`)
    }
    const failed = results?.find(([err]) => err)
    if (failed?.[0]) throw classify(failed[0], `XADD ${key}`)
    const log = res.logFor(input.name)
    for (const o of input.outcomes) {
      log.error(
        { entryId: o.entryId, id: o.id, err: 'error' in o ? reviveError(o.error) : undefined },
        'message dead-lettered',
      )
    }
  })

function dlqFields(input: SettleInput, o: Outcome, entry: Entry | undefined): string[] {
  const fields = ['id', o.id]
  if (entry?.payload != null) fields.push('payload', entry.payload)
  if (entry && Object.keys(entry.headers).length > 0) fields.push('headers', JSON.stringify(entry.headers))
  for (const [k, v] of Object.entries(entry?.fields ?? {})) fields.push(k, v)
  const error = 'error' in o ? o.error : { name: 'Error', code: 'ACK_ERR_HANDLER_FAILED', message: 'unknown' }
  fields.push(
    'dlq.error',
    JSON.stringify({ name: error.name, code: error.code, message: error.message }),
    'dlq.attempts',
    String('attempt' in o ? o.attempt : 1),
    'dlq.stream',
    input.stream,
    'dlq.group',
    input.group,
    'dlq.consumer',
    input.consumer,
    'dlq.entryId',
    o.entryId,
    'dlq.failedAt',
    new Date().toISOString(),
  )
  return fields
}
