import type { EdgeKind, GraphEdge, GraphNode, GuardRef, MachineGraph } from './graph.js'

/**
 * The machine as an XState v5 machine config in JSON: the object `createMachine()` takes, which is
 * what Stately's editor imports (paste `createMachine(<this JSON>)` into Import) and what it exports
 * as "JSON". Implementations are left out — they are code — and referenced by name: `src` of an
 * invoke, `guard` (`{ type, params }` when the params are static), the keys of `after`. Machine and
 * state ids are kept, so the event names XState derives from them (`xstate.done.actor.0.consumer.starting`,
 * `xstate.after.reconnectDelay.consumer.disconnected`) come out the same when the JSON is loaded.
 * `machine.toJSON()` is not used: it is XState's internal definition (resolved `#id` arrays, an
 * `initial` object, invoke results flattened into `on`) and `createMachine()` cannot read it back.
 */

export type TargetJson = string | string[]

export interface TransitionJson {
  target?: TargetJson
  guard?: string | { type: string; params: unknown }
  reenter?: true
}

export type TransitionsJson = TransitionJson | TransitionJson[]

export interface InvokeJson {
  src: string
  id?: string
  onDone?: TransitionsJson
  onError?: TransitionsJson
  onSnapshot?: TransitionsJson
}

export interface StateJson {
  id?: string
  type?: 'parallel' | 'final' | 'history'
  history?: 'shallow' | 'deep'
  description?: string
  initial?: string
  invoke?: InvokeJson | InvokeJson[]
  on?: Record<string, TransitionsJson>
  after?: Record<string, TransitionsJson>
  always?: TransitionsJson
  onDone?: TransitionsJson
  states?: Record<string, StateJson>
}

export interface MachineJson extends StateJson {
  id: string
}

/** One value for one element, as people write configs; arrays only where there is a choice. */
const one = <T>(items: T[]): T | T[] => (items.length === 1 ? items[0]! : items)

export function toMachineConfig(graph: MachineGraph): MachineJson {
  const byId = new Map(graph.nodes.map((n) => [n.id, n]))
  const root = byId.get(graph.id)
  if (!root) throw new Error(`graph of machine "${graph.id}" has no root node`)
  return { id: graph.id, ...stateConfig(root, graph, byId) }
}

/** A machine's config, or `{ <machine id>: config }` for several. */
export function toJson(graphs: MachineGraph[]): string {
  const value =
    graphs.length === 1
      ? toMachineConfig(graphs[0]!)
      : Object.fromEntries(graphs.map((g) => [g.id, toMachineConfig(g)]))
  return `${JSON.stringify(value, null, 2)}\n`
}

function stateConfig(node: GraphNode, graph: MachineGraph, byId: Map<string, GraphNode>): StateJson {
  const edges = graph.edges.filter((e) => e.source === node.id)
  const ofKind = (kind: EdgeKind, match: (e: GraphEdge) => boolean = () => true) =>
    edges.filter((e) => e.kind === kind && match(e)).map((e) => transition(e, node, byId))
  const state: StateJson = {}
  const defaultId = [graph.id, ...node.path].join('.')
  if (node.parent !== null && node.id !== defaultId) state.id = node.id
  if (node.type === 'parallel' || node.type === 'final' || node.type === 'history') state.type = node.type
  if (node.history) state.history = node.history
  if (node.description !== null) state.description = node.description
  if (node.initial) state.initial = byId.get(node.initial)?.key ?? node.initial
  if (node.invokes.length > 0) {
    state.invoke = one(
      node.invokes.map((inv, i) => {
        const json: InvokeJson = { src: inv.src }
        // XState names an invoke `<index>.<state id>` unless told otherwise; keep only chosen ids.
        if (inv.id !== `${i}.${node.id}`) json.id = inv.id
        const results = [
          ['onDone', ofKind('done', (e) => e.event === `xstate.done.actor.${inv.id}`)],
          ['onError', ofKind('error', (e) => e.event === `xstate.error.actor.${inv.id}`)],
          ['onSnapshot', ofKind('snapshot', (e) => e.event === `xstate.snapshot.${inv.id}`)],
        ] as const
        for (const [key, list] of results) if (list.length > 0) json[key] = one(list)
        return json
      }),
    )
  }
  const on = groupBy(
    edges.filter((e) => e.kind === 'event'),
    (e) => e.event,
    node,
    byId,
  )
  if (on) state.on = on
  const after = groupBy(
    edges.filter((e) => e.kind === 'after'),
    (e) => String(e.delay),
    node,
    byId,
  )
  if (after) state.after = after
  const always = ofKind('always')
  if (always.length > 0) state.always = one(always)
  const onDone = ofKind('stateDone')
  if (onDone.length > 0) state.onDone = one(onDone)
  const children = graph.nodes.filter((n) => n.parent === node.id)
  if (children.length > 0) {
    state.states = Object.fromEntries(children.map((c) => [c.key, stateConfig(c, graph, byId)]))
  }
  return state
}

function groupBy(
  edges: GraphEdge[],
  key: (e: GraphEdge) => string,
  node: GraphNode,
  byId: Map<string, GraphNode>,
): Record<string, TransitionsJson> | undefined {
  if (edges.length === 0) return undefined
  const groups = new Map<string, TransitionJson[]>()
  for (const e of edges) groups.set(key(e), [...(groups.get(key(e)) ?? []), transition(e, node, byId)])
  return Object.fromEntries([...groups].map(([k, list]) => [k, one(list)]))
}

function transition(edge: GraphEdge, source: GraphNode, byId: Map<string, GraphNode>): TransitionJson {
  const json: TransitionJson = {}
  if (edge.targets.length > 0) json.target = one(edge.targets.map((t) => targetRef(t, source, byId)))
  if (edge.guard) json.guard = guardConfig(edge.guard)
  if (edge.reenter) json.reenter = true
  return json
}

/** A sibling by its key, as people write it; anything else by `#id`, which resolves from anywhere. */
function targetRef(targetId: string, source: GraphNode, byId: Map<string, GraphNode>): string {
  const target = byId.get(targetId)
  return target && source.parent !== null && target.parent === source.parent ? target.key : `#${targetId}`
}

const guardConfig = (guard: GuardRef): TransitionJson['guard'] =>
  guard.params === undefined ? guard.name : { type: guard.name, params: guard.params }
