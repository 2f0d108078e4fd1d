import { fromPromise } from 'xstate'
import type { Resources } from '../resources.js'

/** Waits for room in the consumer's handler pool; resolves with how many messages it may read. */
export const reserveCapacity = (res: Resources) =>
  fromPromise<number, { name: string; count: number }>(async ({ input, signal }) => {
    const gate = res.pool(input.name).gate
    const granted = await gate.reserve(input.name, input.count, signal)
    // The actor was stopped while the grant was on its way: give it back, nobody will use it.
    if (signal.aborted) gate.release(input.name, granted)
    return granted
  })
