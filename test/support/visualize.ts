import assert from 'node:assert/strict'
import {
  and,
  fromCallback,
  fromPromise,
  not,
  setup,
  type AnyStateMachine,
  type AnyStateNode,
  type AnyTransitionDefinition,
} from 'xstate'

/**
 * Helpers for the visualize tests. The expectations are read straight off a machine's StateNodes
 * here, not through src/visualize/graph.ts, and each output is parsed back so the tests can compare
 * whole sets: a state or an arrow the generator dropped, duplicated or mislabelled fails.
 */

export interface ExpectedState {
  id: string
  key: string
  parent: string | null
  initial: string | null
  invokes: string[]
}

/** `source -> target : label`, one per drawn arrow; a targetless transition loops on its source. */
export interface ExpectedArrow {
  source: string
  target: string
  label: string
}

// A built machine names every invoke's logic with a string (inline logic gets `xstate.invoke.<n>.<id>`).
export function walk(machine: AnyStateMachine): { states: ExpectedState[]; arrows: ExpectedArrow[] } {
  const states: ExpectedState[] = []
  const arrows: ExpectedArrow[] = []
  const visit = (node: AnyStateNode) => {
    states.push({
      id: node.id,
      key: node.key,
      parent: node.parent?.id ?? null,
      initial: node.type === 'compound' ? node.initial.target[0]!.id : null,
      invokes: node.invoke.map((i) => i.src as string),
    })
    const all: [string, AnyTransitionDefinition[]][] = [...node.transitions, ['', node.always ?? []]]
    for (const [event, list] of all) {
      for (const t of list) {
        const targets = t.target?.length ? t.target.map((s: AnyStateNode) => s.id) : [node.id]
        for (const target of targets) arrows.push({ source: node.id, target, label: label(node, event, t) })
      }
    }
    Object.values(node.states).forEach(visit)
  }
  visit(machine.root)
  return { states, arrows }
}

/** The arrow text the README documents: `trigger [guard params] (reenter)`. */
function label(node: AnyStateNode, event: string, t: AnyTransitionDefinition): string {
  let text = event
  if (event === '') text = 'always'
  else if ('delay' in t) text = `after ${typeof t.delay === 'number' ? `${t.delay}ms` : String(t.delay)}`
  else if (event === `xstate.done.state.${node.id}`) text = 'done'
  else if (!Object.hasOwn(node.config.on ?? {}, event)) {
    for (const inv of node.invoke) {
      if (event === `xstate.done.actor.${inv.id}`) text = `done ${inv.src as string}`
      if (event === `xstate.error.actor.${inv.id}`) text = `error ${inv.src as string}`
      if (event === `xstate.snapshot.${inv.id}`) text = `snapshot ${inv.src as string}`
    }
  }
  if (t.guard) text += ` [${guardText(t.guard)}]`
  return t.reenter ? `${text} (reenter)` : text
}

function guardText(guard: unknown): string {
  if (typeof guard === 'string') return guard
  if (typeof guard === 'function') {
    const operands = (guard as { guards?: unknown[] }).guards
    return operands ? `${guard.name}(${operands.map(guardText).join(', ')})` : 'inline'
  }
  const { type, params } = guard as { type: string; params?: unknown }
  const pairs = typeof params === 'object' && params ? Object.entries(params) : []
  return [type, ...pairs.map(([k, v]) => `${k}=${String(v)}`)].join(' ')
}

export const sorted = (xs: string[]) => [...xs].sort()
export const pairs = (m: Map<string, string | null>) => sorted([...m].map(([k, v]) => `${k} < ${v}`))

/** States with their parents, initial children, invoke notes (descriptions or notes) and labelled arrows. */
export function parseMermaid(text: string) {
  const parents = new Map<string, string | null>()
  const initials = new Map<string, string | null>()
  const notes: string[] = []
  const arrows: string[] = []
  const stack: string[] = []
  let noteOf: string | null = null
  for (const line of text.split('\n').map((l) => l.trim())) {
    let m: RegExpExecArray | null
    if (noteOf !== null) {
      if (line === 'end note') noteOf = null
      else notes.push(`${noteOf} : ${line}`)
    } else if ((m = /^note right of (\w+)$/.exec(line))) noteOf = m[1]!
    else if ((m = /^state "[^"]*" as (\w+)( \{)?$/.exec(line))) {
      parents.set(m[1]!, stack.at(-1) ?? null)
      if (m[2]) stack.push(m[1]!)
    } else if (line === '}') stack.pop()
    else if ((m = /^\[\*\] --> (\w+)$/.exec(line))) initials.set(stack.at(-1)!, m[1]!)
    else if ((m = /^(\w+) --> (\w+) : (.*)$/.exec(line))) arrows.push(`${m[1]} -> ${m[2]} : ${m[3]}`)
    else if ((m = /^(\w+) : (.*)$/.exec(line))) notes.push(`${m[1]} : ${m[2]}`)
  }
  return { parents, initials, notes, arrows }
}

/** The same for DOT: clusters and nodes with their enclosing cluster, initial arrows, labels. */
export function parseDot(text: string) {
  const parents = new Map<string, string | null>()
  const initials = new Map<string, string | null>()
  const labels: string[] = []
  const arrows: string[] = []
  const stack: string[] = []
  const unquote = (s: string) => s.replace(/\\n/g, '\n').replace(/\\(.)/g, '$1')
  for (const line of text.split('\n').map((l) => l.trim())) {
    let m: RegExpExecArray | null
    if ((m = /^subgraph "cluster_(.+)" \{$/.exec(line))) {
      parents.set(m[1]!, stack.at(-1) ?? null)
      stack.push(m[1]!)
    } else if (line === '}') stack.pop()
    else if ((m = /^"([^"]+)" -> "([^"]+)"$/.exec(line))) initials.set(m[1]!, m[2]!)
    else if ((m = /^"([^"]+)" -> "([^"]+)" \[label="((?:[^"\\]|\\.)*)"/.exec(line))) {
      // A dotted loop gathers a state's targetless transitions, one label line each.
      const labels = line.includes('style=dotted') ? unquote(m[3]!).split('\n') : [unquote(m[3]!)]
      for (const label of labels) arrows.push(`${m[1]} -> ${m[2]} : ${label}`)
    } else if ((m = /^"([^"]+)" \[label="((?:[^"\\]|\\.)*)"/.exec(line))) {
      parents.set(m[1]!, stack.at(-1) ?? null)
      labels.push(unquote(m[2]!))
    }
  }
  return { parents, initials, labels, arrows }
}

/** Every opened element is closed in order, the document element is `<svg>`; returns its texts. */
export function svgTexts(xml: string): Set<string> {
  const body = xml
    .replace(/^<\?xml[^>]*\?>/, '')
    .replace(/<!DOCTYPE[^>]*>/, '')
    .replace(/<!--[\s\S]*?-->/g, '')
    .trim()
  assert.match(body, /^<svg[\s>]/)
  const stack: string[] = []
  for (const [, close, name, selfClosing] of body.matchAll(/<(\/?)([A-Za-z][\w:.-]*)(?:\s[^>]*?)?(\/?)>/g)) {
    if (selfClosing) continue
    if (close) assert.equal(stack.pop(), name, `</${name}> closes the wrong element`)
    else stack.push(name!)
  }
  assert.deepEqual(stack, [])
  const unescape = (s: string) =>
    s
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"')
      .replace(/&#45;/g, '-')
      .replace(/&amp;/g, '&')
  return new Set([...body.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => unescape(m[1]!)))
}

/**
 * Every statechart feature the ackstate machines do not (yet) use: a root transition, a custom id, a
 * parallel state with onDone, history, two invokes (one with an id and onSnapshot), numeric and named
 * delays, reenter, targetless, higher-order, inline and parameterised guards. Never run, only drawn.
 */
export const featureMachine = setup({
  actors: { fetch: fromPromise(async () => 1), watch: fromCallback(() => () => {}) },
  guards: { isA: () => true, isB: () => false, atLeast: (_, params: { n: number }) => params.n > 0 },
  delays: { later: 100 },
}).createMachine({
  id: 'features',
  initial: 'idle',
  on: { reset: '.idle' },
  states: {
    idle: {
      on: {
        go: { target: 'busy', guard: and(['isA', not('isB')]) },
        poke: { guard: { type: 'atLeast', params: { n: 1 } } },
        again: { target: 'idle', reenter: true },
      },
      after: { 500: 'busy', later: [{ target: 'finished', guard: 'isB' }, { target: 'busy' }] },
    },
    busy: {
      id: 'working',
      type: 'parallel',
      invoke: [
        { src: 'fetch', onDone: '#features.finished', onError: { target: '#features.idle' } },
        { id: 'watcher', src: 'watch', onSnapshot: {} },
      ],
      onDone: 'finished',
      states: {
        left: {
          initial: 'a',
          states: {
            a: { on: { next: 'b' } },
            b: { type: 'final' },
            hist: { type: 'history', history: 'deep' },
          },
        },
        right: {
          initial: 'c',
          states: { c: { always: { target: 'd', guard: () => true } }, d: { type: 'final' } },
        },
      },
    },
    finished: { type: 'final', description: 'all work finished' },
  },
})
