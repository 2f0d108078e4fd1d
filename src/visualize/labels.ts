import type { GraphEdge, GraphNode, GuardRef } from './graph.js'

/**
 * The text of an arrow and a state box, shared by the mermaid and dot renderers so both pictures
 * read the same. XState's generated event names (`xstate.done.actor.0.consumer.starting`) are exact but
 * unreadable on an arrow, so invoke results read `done startConsumer` and timers `after reconnectDelay`;
 * the JSON form keeps the exact structure.
 */

/** `hasDead`, or `resumesAt state=acking` for a guard with static params. */
export function guardLabel(guard: GuardRef): string {
  if (guard.params === undefined) return guard.name
  const params =
    typeof guard.params === 'object' && guard.params !== null
      ? Object.entries(guard.params).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      : [JSON.stringify(guard.params)]
  return [guard.name, ...params].join(' ')
}

/** What triggers the edge, without its guard. */
export function triggerLabel(edge: GraphEdge): string {
  switch (edge.kind) {
    case 'always':
      return 'always'
    case 'after':
      return `after ${typeof edge.delay === 'number' ? `${edge.delay}ms` : String(edge.delay)}`
    case 'done':
    case 'error':
    case 'snapshot':
      return `${edge.kind} ${edge.actor ?? edge.event}`
    case 'stateDone':
      return 'done'
    case 'event':
      return edge.event
  }
}

/** `trigger [guard] (reenter)`: everything that decides whether and how the edge is taken. */
export function edgeLabel(edge: GraphEdge): string {
  let label = triggerLabel(edge)
  if (edge.guard) label += ` [${guardLabel(edge.guard)}]`
  if (edge.reenter) label += ' (reenter)'
  return label
}

/** Lines under a state's name: what it invokes while active. */
export function stateNotes(node: GraphNode): string[] {
  return node.invokes.map((inv) => `invoke ${inv.src}`)
}
