import { fromPromise } from 'xstate'
import type { Entry, Outcome } from '../../machines/types.js'

/** Lets pending promise callbacks and actor steps run. */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r))
}

export function entry(entryId: string, over: Partial<Entry> = {}): Entry {
  return { id: `m-${entryId}`, entryId, payload: '{}', headers: {}, fields: {}, attempt: 1, ...over }
}

export const ok = (e: Entry): Outcome => ({ entryId: e.entryId, id: e.id, status: 'ok', durationMs: 1 })
export const retry = (e: Entry): Outcome => ({
  entryId: e.entryId,
  id: e.id,
  status: 'retry',
  durationMs: 1,
  attempt: e.attempt,
  error: { name: 'Error', code: 'ACK_ERR_HANDLER_FAILED', message: 'boom' },
})
export const dead = (e: Entry): Outcome => ({
  entryId: e.entryId,
  id: e.id,
  status: 'dead',
  durationMs: 1,
  attempt: e.attempt,
  error: { name: 'PermanentError', code: 'ACK_ERR_PERMANENT', message: 'bad order' },
})

export function codedError(code: string, message = code): Error {
  return Object.assign(new Error(message), { code })
}

/**
 * A promise actor whose calls are recorded and whose results the test hands out one by one:
 * `next(value)` resolves the oldest pending call, `fail(err)` rejects it.
 */
export function scripted<I, O>() {
  const calls: I[] = []
  const pending: { resolve: (v: O) => void; reject: (e: unknown) => void }[] = []
  const logic = fromPromise<O, I>(({ input }) => {
    calls.push(input)
    return new Promise<O>((resolve, reject) => pending.push({ resolve, reject }))
  })
  return {
    logic,
    calls,
    get waiting() {
      return pending.length
    },
    next(value: O) {
      const p = pending.shift()
      if (!p) throw new Error('no pending call to resolve')
      p.resolve(value)
    },
    fail(err: unknown) {
      const p = pending.shift()
      if (!p) throw new Error('no pending call to reject')
      p.reject(err)
    },
  }
}

/** A promise actor that records its input and resolves at once with `value`. */
export function immediate<I, O>(value: O) {
  const calls: I[] = []
  return { calls, logic: fromPromise<O, I>(async ({ input }) => (calls.push(input), value)) }
}
