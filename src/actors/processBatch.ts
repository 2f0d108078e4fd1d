import { fromPromise } from 'xstate'
import type { Outcome, ProcessInput } from '../../machines/types.js'
import type { Resources } from '../resources.js'

/** Runs the batch in the consumer's handler pool; handler errors come back as outcomes, not rejections. */
export const processBatch = (res: Resources) =>
  fromPromise<Outcome[], ProcessInput>(async ({ input }) => {
    const { handlerTimeoutMs } = res.consumer(input.name)
    const outcomes = await res.pool(input.name).run({ ...input, timeoutMs: handlerTimeoutMs })
    res.logFor(input.name).debug({ count: outcomes.length }, 'batch processed')
    return outcomes
  })
