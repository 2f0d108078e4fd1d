import type { PromiseActorLogic, PromiseSnapshot } from 'xstate'

const RESOLVE = 'ackstate.task.resolve'
const REJECT = 'ackstate.task.reject'
const STOP = 'xstate.stop'

/**
 * XState's `fromPromise` without the AbortController: for the consumer's per-batch steps that never
 * abort their work (processing a batch, acking it, dead-lettering, recording retries, claiming due
 * entries). `fromPromise` makes a controller and its signal for every run whether the work reads it
 * or not; at a few steps per batch that was a tenth of the consumer machine's own cost per batch.
 *
 * The same contract otherwise: the actor is done with the promise's value or fails with its
 * rejection, and a result that arrives after the actor was stopped is dropped. Work that must stop
 * when its state is left (a blocked read, a wait for pool capacity) keeps `fromPromise` and its
 * signal.
 */
export function fromTask<TOutput, TInput>(
  run: (args: { input: TInput }) => Promise<TOutput>,
): PromiseActorLogic<TOutput, TInput> {
  return {
    config: run,
    transition: (snapshot, event) => {
      if (snapshot.status !== 'active') return snapshot
      switch (event.type) {
        case RESOLVE:
          return { ...snapshot, status: 'done', output: event.data as TOutput, input: undefined }
        case REJECT:
          return { ...snapshot, status: 'error', error: event.data, input: undefined }
        case STOP:
          return { ...snapshot, status: 'stopped', input: undefined }
        default:
          return snapshot
      }
    },
    start: (snapshot, { self }) => {
      if (snapshot.status !== 'active') return
      const settle = (type: string) => (data: unknown) => {
        if (self.getSnapshot().status === 'active') self.send({ type, data })
      }
      void Promise.resolve(run({ input: snapshot.input as TInput })).then(settle(RESOLVE), settle(REJECT))
    },
    getInitialSnapshot: (_, input) =>
      ({ status: 'active', output: undefined, error: undefined, input }),
    getPersistedSnapshot: (snapshot) => snapshot,
    restoreSnapshot: (snapshot) => snapshot as PromiseSnapshot<TOutput, TInput>,
  }
}
