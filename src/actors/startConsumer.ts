import { fromPromise } from 'xstate'
import type { ConsumerRef } from '../../machines/types.js'
import { classify } from '../redis/errors.js'
import type { Resources } from '../resources.js'

/**
 * Prepares a consumer: returns pool capacity a previous incarnation may still hold, opens its
 * blocking connection and creates its group when missing. A new group starts at 0, so entries
 * written before the first start are consumed too.
 */
export const startConsumer = (res: Resources) =>
  fromPromise<void, ConsumerRef>(async ({ input }) => {
    res.pool(input.name).gate.releaseAll(input.name)
    res.reader(input.name, input.consumer)
    try {
      await res.redis.xgroup('CREATE', input.stream, input.group, '0', 'MKSTREAM')
      res.logFor(input.name).info({ consumer: input.consumer }, 'consumer group created')
    } catch (err) {
      if ((err as Error).message?.startsWith('BUSYGROUP')) return
      throw classify(err, `XGROUP CREATE ${input.stream} ${input.group}`)
    }
  })
