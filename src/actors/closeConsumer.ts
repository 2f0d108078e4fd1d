import { fromPromise } from 'xstate'
import type { ConsumerRef } from '../../machines/types.js'
import type { Resources } from '../resources.js'

/** Closes the consumer's blocking connection once it has stopped reading. */
export const closeConsumer = (res: Resources) =>
  fromPromise<void, ConsumerRef>(({ input }) => {
    res.dropReader(input.name)
    res.pool(input.name).gate.releaseAll(input.name)
    // A consumer a reload removed takes its settings and (unless shared) its pool with it.
    res.release(input.name)
    return Promise.resolve()
  })
