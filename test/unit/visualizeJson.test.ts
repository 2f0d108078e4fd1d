import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createMachine, type AnyStateMachine } from 'xstate'
import { visualize } from '../../src/visualize/command.js'
import { buildGraph } from '../../src/visualize/graph.js'
import { toJson, toMachineConfig } from '../../src/visualize/json.js'
import { MACHINES } from '../../src/visualize/machines.js'
import { featureMachine, walk } from '../support/visualize.js'

/**
 * The JSON form is an XState v5 machine config (docs/visualize.md). Loading it with a bare
 * `createMachine()` — no setup(), no implementations, as Stately's editor does — must give back
 * the same machine shape: the same states, transitions, guards by name, invoke sources and delays.
 */

const cases: [string, AnyStateMachine][] = [...Object.entries(MACHINES), ['feature fixture', featureMachine]]

/** The keys docs/visualize.md documents, per kind of object. */
const STATE_KEYS = [
  'id',
  'type',
  'history',
  'description',
  'initial',
  'invoke',
  'on',
  'after',
  'always',
  'onDone',
  'states',
]
const INVOKE_KEYS = ['src', 'id', 'onDone', 'onError', 'onSnapshot']
const TRANSITION_KEYS = ['target', 'guard', 'reenter']

type Json = Record<string, unknown>
const list = (value: unknown): Json[] => (Array.isArray(value) ? value : [value]) as Json[]

/** Fails on any key outside the documented format, anywhere in the config. */
function checkFormat(state: Json, path: string): void {
  const extra = (obj: Json, allowed: string[], where: string) =>
    Object.keys(obj)
      .filter((k) => !allowed.includes(k))
      .map((k) => `${where}.${k}`)
  const transitions = (value: unknown, where: string) =>
    list(value).flatMap((t) => extra(t, TRANSITION_KEYS, where))
  const problems = [
    ...extra(state, STATE_KEYS, path),
    ...Object.entries((state.on ?? {}) as Json).flatMap(([e, t]) => transitions(t, `${path}.on[${e}]`)),
    ...Object.entries((state.after ?? {}) as Json).flatMap(([d, t]) => transitions(t, `${path}.after[${d}]`)),
    ...(state.always ? transitions(state.always, `${path}.always`) : []),
    ...(state.onDone ? transitions(state.onDone, `${path}.onDone`) : []),
    ...(state.invoke ? list(state.invoke) : []).flatMap((inv, i) => [
      ...extra(inv, INVOKE_KEYS, `${path}.invoke[${i}]`),
      ...['onDone', 'onError', 'onSnapshot'].flatMap((k) =>
        inv[k] ? transitions(inv[k], `${path}.invoke[${i}].${k}`) : [],
      ),
    ]),
  ]
  assert.deepEqual(problems, [])
  for (const [key, child] of Object.entries((state.states ?? {}) as Record<string, Json>)) {
    checkFormat(child, `${path}.${key}`)
  }
}

for (const [name, machine] of cases) {
  const graph = buildGraph(machine)
  const json = toJson([graph])
  const loaded = createMachine(JSON.parse(json) as Parameters<typeof createMachine>[0])

  test(`${name}: JSON → createMachine() without implementations gives back the same graph`, () => {
    assert.deepEqual(buildGraph(loaded), graph)
  })

  test(`${name}: the machine loaded from JSON has the same states and transitions, walked directly`, () => {
    assert.deepEqual(walk(loaded), walk(machine))
  })

  test(`${name}: the JSON uses only the documented machine-config keys and no code`, () => {
    assert.doesNotMatch(json, /=>|function/)
    checkFormat(JSON.parse(json) as Json, graph.id)
  })
}

test('the config reads as written by hand: sibling keys, #ids elsewhere, guards and sources by name', () => {
  const config = toMachineConfig(buildGraph(featureMachine))
  const idle = config.states?.idle
  const busy = config.states?.busy
  assert.deepEqual(config.on, { reset: { target: '#features.idle' } })
  assert.deepEqual(idle?.on, {
    go: { target: 'busy', guard: 'and(isA, not(isB))' },
    poke: { guard: { type: 'atLeast', params: { n: 1 } } },
    again: { target: 'idle', reenter: true },
  })
  assert.deepEqual(idle?.after, {
    500: { target: 'busy' },
    later: [{ target: 'finished', guard: 'isB' }, { target: 'busy' }],
  })
  assert.deepEqual(busy?.invoke, [
    { src: 'fetch', onDone: { target: 'finished' }, onError: { target: 'idle' } },
    { src: 'watch', id: 'watcher', onSnapshot: {} },
  ])
  assert.deepEqual([busy?.id, busy?.type, busy?.onDone], ['working', 'parallel', { target: 'finished' }])
  assert.deepEqual(config.states?.finished, { type: 'final', description: 'all work finished' })
})

test('without --machine the JSON is an object of machine configs keyed by machine id', async () => {
  const { output } = await visualize({ format: 'json' })
  const expected = Object.fromEntries(
    Object.values(MACHINES).map((m) => [m.id, toMachineConfig(buildGraph(m))] as const),
  )
  assert.deepEqual(JSON.parse(output), JSON.parse(JSON.stringify(expected)))
})
