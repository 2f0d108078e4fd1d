import type { AnyStateMachine, AnyStateNode, AnyTransitionDefinition } from 'xstate'

/**
 * One neutral picture of a machine, read off the machine object that runs (never off its source
 * text), so a diagram cannot drift from the code. Every renderer (mermaid, dot, svg, json) starts
 * from this model; the unit tests compare it with an independent walk of the same StateNodes.
 */

/** Where XState put a transition; the JSON renderer puts each kind back under its own config key. */
export type EdgeKind =
  /** `on: { event: … }`, wildcards included. */
  | 'event'
  /** `always: …` (eventless). */
  | 'always'
  /** `after: { delay: … }`. */
  | 'after'
  /** `invoke: { onDone }`, `onError`, `onSnapshot`. */
  | 'done'
  | 'error'
  | 'snapshot'
  /** `onDone` of a compound or parallel state: a final child was reached. */
  | 'stateDone'

/** A guard by name. Only a named guard survives a trip through JSON; an inline one is named `inline`. */
export interface GuardRef {
  name: string
  /** Static params only (`{ type, params: { state: 'acking' } }`); params computed by a function are dropped. */
  params?: unknown
}

/** An invoked actor: its id (events name it) and the name of its logic in `setup({ actors })`. */
export interface InvokeRef {
  id: string
  src: string
}

export interface GraphNode {
  /** XState state node id, e.g. `consumer.reading.fetching` (the root's id is the machine id). */
  id: string
  key: string
  /** Keys from the root, `[]` for the root. */
  path: string[]
  parent: string | null
  type: AnyStateNode['type']
  /** Id of the initial child of a compound state. */
  initial: string | null
  /** `shallow` or `deep` for a history state. */
  history: 'shallow' | 'deep' | null
  invokes: InvokeRef[]
  description: string | null
}

export interface GraphEdge {
  source: string
  /** Target state ids; empty for a targetless transition (it runs actions and stays). */
  targets: string[]
  /** The event descriptor XState matches, e.g. `xstate.done.actor.0.consumer.starting`; `''` for always. */
  event: string
  kind: EdgeKind
  guard: GuardRef | null
  /** Delay name (`reconnectDelay`) or milliseconds, for `after` edges. */
  delay: string | number | null
  /** Source logic name of the invoke an onDone/onError/onSnapshot edge belongs to. */
  actor: string | null
  reenter: boolean
}

export interface MachineGraph {
  /** Machine id, also the id of the root node. */
  id: string
  /** Depth-first, in definition order: parents before children. */
  nodes: GraphNode[]
  /** Per node in `nodes` order, in the order XState tries them. */
  edges: GraphEdge[]
}

/** Builds the graph of a machine from its StateNodes. */
export function buildGraph(machine: AnyStateMachine): MachineGraph {
  const nodes: GraphNode[] = []
  const edges: GraphEdge[] = []
  const visit = (node: AnyStateNode) => {
    nodes.push(toNode(node))
    for (const [event, transitions] of node.transitions) {
      for (const t of transitions) edges.push(toEdge(node, event, kindOf(node, event, t), t))
    }
    for (const t of node.always ?? []) edges.push(toEdge(node, '', 'always', t))
    for (const child of Object.values(node.states)) visit(child)
  }
  visit(machine.root)
  return { id: machine.id, nodes, edges }
}

function toNode(node: AnyStateNode): GraphNode {
  return {
    id: node.id,
    key: node.key,
    path: [...node.path],
    parent: node.parent?.id ?? null,
    type: node.type,
    initial: node.type === 'compound' ? (node.initial.target[0]?.id ?? null) : null,
    history: node.type === 'history' && node.history ? node.history : null,
    invokes: invokesOf(node),
    description: node.description ?? null,
  }
}

// `src` is a string once the machine is built: the setup() name, or xstate.invoke.<n>.<id> for inline logic.
const invokesOf = (node: AnyStateNode): InvokeRef[] =>
  node.invoke.map((inv) => ({ id: inv.id, src: typeof inv.src === 'string' ? inv.src : inv.id }))

const INVOKE_EVENT_PREFIX: Partial<Record<EdgeKind, string>> = {
  done: 'xstate.done.actor.',
  error: 'xstate.error.actor.',
  snapshot: 'xstate.snapshot.',
}

function toEdge(node: AnyStateNode, event: string, kind: EdgeKind, t: AnyTransitionDefinition): GraphEdge {
  const delay = 'delay' in t && (typeof t.delay === 'string' || typeof t.delay === 'number') ? t.delay : null
  const prefix = INVOKE_EVENT_PREFIX[kind]
  const invoke = prefix ? invokesOf(node).find((inv) => event === prefix + inv.id) : undefined
  return {
    source: node.id,
    targets: (t.target ?? []).map((target: AnyStateNode) => target.id),
    event,
    kind,
    guard: guardRef(t.guard),
    delay: kind === 'after' ? delay : null,
    actor: invoke?.src ?? null,
    reenter: t.reenter,
  }
}

/**
 * XState merges `on`, invoke onDone/onError/onSnapshot, state onDone and `after` into one map keyed by
 * event descriptor; the descriptor XState generated tells them apart again.
 */
function kindOf(node: AnyStateNode, event: string, t: AnyTransitionDefinition): EdgeKind {
  const on = (node.config.on ?? {}) as Record<string, unknown>
  if (Object.hasOwn(on, event)) return 'event'
  if ('delay' in t) return 'after'
  if (event === `xstate.done.state.${node.id}`) return 'stateDone'
  for (const inv of node.invoke) {
    for (const [kind, prefix] of Object.entries(INVOKE_EVENT_PREFIX)) {
      if (event === prefix + inv.id) return kind as EdgeKind
    }
  }
  return 'event'
}

/** Names a guard as written in the config: `'hasDead'`, `{ type, params }`, or a built-in `and/or/not/stateIn`. */
function guardRef(guard: unknown): GuardRef | null {
  if (guard === undefined || guard === null) return null
  if (typeof guard === 'string') return { name: guard }
  if (typeof guard === 'function') return { name: functionGuardName(guard as GuardFunction) }
  if (typeof guard === 'object' && 'type' in guard && typeof guard.type === 'string') {
    const params = 'params' in guard ? guard.params : undefined
    return params === undefined || typeof params === 'function'
      ? { name: guard.type }
      : { name: guard.type, params }
  }
  return { name: 'inline' }
}

type GuardFunction = ((...args: never[]) => unknown) & { guards?: unknown[]; stateValue?: unknown }

function functionGuardName(fn: GuardFunction): string {
  // and()/or()/not() return functions named after themselves that carry their operands in `guards`.
  if (Array.isArray(fn.guards)) return `${fn.name}(${fn.guards.map((g) => guardRef(g)?.name).join(', ')})`
  if ('stateValue' in fn) return `stateIn(${JSON.stringify(fn.stateValue)})`
  // An inline arrow takes the name of the `guard` property it was written in: that name says nothing.
  return fn.name && fn.name !== 'guard' ? fn.name : 'inline'
}
