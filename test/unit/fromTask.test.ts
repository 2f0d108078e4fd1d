import assert from 'node:assert/strict'
import { test } from 'node:test'
import { assign, createActor, setup } from 'xstate'
import { fromTask } from '../../src/actors/fromTask.js'
import { settle } from '../support/machine.js'

/** A task whose promise the test settles by hand. */
function manual<T>() {
  let resolve!: (v: T) => void
  let reject!: (e: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  const inputs: unknown[] = []
  const logic = fromTask<T, { n: number }>(({ input }) => {
    inputs.push(input)
    return promise
  })
  return { logic, resolve, reject, inputs }
}

function parent(logic: ReturnType<typeof manual<number>>['logic']) {
  return setup({
    types: { context: {} as { got: number | null; error: string | null } },
    actors: { task: logic },
  }).createMachine({
    context: { got: null, error: null },
    initial: 'working',
    states: {
      working: {
        invoke: {
          src: 'task',
          input: { n: 7 },
          onDone: { target: 'done', actions: assign({ got: ({ event }) => event.output }) },
          onError: { target: 'failed', actions: assign({ error: ({ event }) => String(event.error) }) },
        },
        on: { leave: 'left' },
      },
      done: {},
      failed: {},
      left: {},
    },
  })
}

test('an invoked task is done with its promise value, run once with its input', async () => {
  const t = manual<number>()
  const actor = createActor(parent(t.logic)).start()
  t.resolve(42)
  await settle()
  assert.equal(actor.getSnapshot().value, 'done')
  assert.equal(actor.getSnapshot().context.got, 42)
  assert.deepEqual(t.inputs, [{ n: 7 }])
})

test('a rejected task fails its invoke with the rejection', async () => {
  const t = manual<number>()
  const actor = createActor(parent(t.logic)).start()
  t.reject(new Error('nope'))
  await settle()
  assert.equal(actor.getSnapshot().value, 'failed')
  assert.equal(actor.getSnapshot().context.error, 'Error: nope')
})

test('a task whose state was left is stopped, and its late result is dropped', async () => {
  const t = manual<number>()
  const actor = createActor(parent(t.logic)).start()
  const child = actor.getSnapshot().children[Object.keys(actor.getSnapshot().children)[0]!]!
  actor.send({ type: 'leave' })
  assert.equal(child.getSnapshot().status, 'stopped')
  t.resolve(1)
  await settle()
  assert.equal(child.getSnapshot().status, 'stopped', 'the value came after the stop: dropped')
  assert.equal(actor.getSnapshot().value, 'left')
  assert.equal(actor.getSnapshot().context.got, null)
})
