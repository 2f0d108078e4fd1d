import { fromPromise } from 'xstate'
import type { ConsumerRef } from '../../machines/types.js'
import { classify } from '../redis/errors.js'
import { recoverStream } from '../recovery/recoverStream.js'
import type { Resources } from '../resources.js'

/**
 * Prepares a consumer: returns pool capacity a previous incarnation may still hold, opens its
 * blocking connection and creates its group when missing. A new group starts at 0, so entries
 * written before the first start are consumed too.
 *
 * A group that had to be created is also how a lost stream shows (FLUSHALL, a restart without
 * persistence, a failover to an empty replica): with the store on, the backup is diffed against the
 * stream and whatever is missing is re-sent before the consumer reads. On a first start nothing is
 * missing, so nothing is sent. The read loops of one consumer (`readers`) start together and share
 * that step, so none of them reads before it is done.
 */
export const startConsumer = (res: Resources) =>
  fromPromise<void, ConsumerRef>(async ({ input }) => {
    res.pool(input.name).gate.releaseAll(input.name)
    res.reader(input.name, input.consumer)
    const key = `${input.stream}\n${input.group}`
    let preparing = res.preparingGroups.get(key)
    if (!preparing) {
      preparing = prepareGroup(res, input).finally(() => res.preparingGroups.delete(key))
      res.preparingGroups.set(key, preparing)
    }
    await preparing
  })

/** Creates the group if it is missing and, when it was (with the store on), recovers the stream. */
async function prepareGroup(res: Resources, input: ConsumerRef): Promise<void> {
  const log = res.logFor(input.name)
  try {
    await res.redis.xgroup('CREATE', input.stream, input.group, '0', 'MKSTREAM')
    log.info({ consumer: input.consumer }, 'consumer group created')
  } catch (err) {
    if ((err as Error).message?.startsWith('BUSYGROUP')) return
    throw classify(err, `XGROUP CREATE ${input.stream} ${input.group}`)
  }
  if (!res.store || !res.config.recovery.auto) return
  try {
    const result = await recoverStream(res.redis, res.store, input.stream)
    if (result.resent > 0) {
      log.warn(
        { resent: result.resent, checked: result.checked },
        'stream or group was missing; re-sent the backed-up messages that were lost',
      )
    }
  } catch (err) {
    // The consumer still starts; `ackstate recover` can finish the job.
    log.error({ err }, 'recovery from the backup failed; run `ackstate recover --stream` by hand')
  }
}
