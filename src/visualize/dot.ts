import type { GraphEdge, GraphNode, MachineGraph } from './graph.js'
import { edgeLabel, stateNotes } from './labels.js'

/**
 * Graphviz DOT of one or more machines. Each machine and each compound state is a cluster; a cluster
 * cannot be an edge's end in DOT, so it holds a small point node under the state's own id — drawn
 * as the initial pseudo-state, arrow to the initial child — and edges of the compound state start or
 * end there, clipped to the cluster border with `ltail`/`lhead` (`compound=true`).
 */

const HEADER = [
  'digraph machines {',
  '  compound=true',
  '  rankdir=TB',
  '  graph [fontname="Helvetica" fontsize=12 labeljust=l style=rounded]',
  '  node [shape=box style=rounded fontname="Helvetica" fontsize=11]',
  '  edge [fontname="Helvetica" fontsize=9]',
]

/** A DOT double-quoted string; `lines` are joined with DOT's centred line break. */
export function quote(...lines: string[]): string {
  return `"${lines.map((l) => l.replace(/\\/g, '\\\\').replace(/"/g, '\\"')).join('\\n')}"`
}

const clusterName = (id: string) => quote(`cluster_${id}`)

const hasCluster = (node: GraphNode) =>
  node.parent === null || node.type === 'compound' || node.type === 'parallel'

export function toDot(graphs: MachineGraph[]): string {
  const lines = [...HEADER]
  for (const graph of graphs) {
    const byId = new Map(graph.nodes.map((n) => [n.id, n]))
    const root = byId.get(graph.id)
    if (root) emitState(root, graph.nodes, '  ', lines)
    for (const edge of graph.edges) if (edge.targets.length > 0) lines.push(...edgeLines(edge, byId))
    lines.push(...loopLines(graph.edges.filter((e) => e.targets.length === 0)))
  }
  lines.push('}')
  return `${lines.join('\n')}\n`
}

function emitState(node: GraphNode, all: GraphNode[], pad: string, lines: string[]): void {
  if (!hasCluster(node)) {
    const attrs = [`label=${quote(node.key, ...stateNotes(node))}`]
    if (node.type === 'final') attrs.push('peripheries=2')
    if (node.type === 'history') attrs.push('shape=circle')
    lines.push(`${pad}${quote(node.id)} [${attrs.join(' ')}]`)
    return
  }
  lines.push(`${pad}subgraph ${clusterName(node.id)} {`)
  lines.push(`${pad}  label=${quote(node.parent === null ? node.id : node.key, ...stateNotes(node))}`)
  if (node.type === 'parallel') lines.push(`${pad}  style="rounded,dashed"`)
  // The anchor: visible as the initial pseudo-state of a compound state, invisible otherwise.
  const anchorStyle = node.initial ? 'shape=point width=0.12' : 'shape=point style=invis width=0'
  lines.push(`${pad}  ${quote(node.id)} [${anchorStyle} label=""]`)
  if (node.initial) lines.push(`${pad}  ${quote(node.id)} -> ${quote(node.initial)}`)
  for (const child of all.filter((n) => n.parent === node.id)) emitState(child, all, `${pad}  `, lines)
  lines.push(`${pad}}`)
}

/** True when `id` is `ancestor` or lies inside it. */
function within(id: string, ancestor: string, byId: Map<string, GraphNode>): boolean {
  for (let n = byId.get(id); n; n = n.parent === null ? undefined : byId.get(n.parent)) {
    if (n.id === ancestor) return true
  }
  return false
}

/** One DOT edge per target. */
function edgeLines(edge: GraphEdge, byId: Map<string, GraphNode>): string[] {
  const source = byId.get(edge.source)
  return edge.targets.map((target) => {
    const attrs = [`label=${quote(edgeLabel(edge))}`]
    const head = byId.get(target)
    // Clipping to a cluster only makes sense when the other end lies outside that cluster.
    if (source && hasCluster(source) && !within(target, source.id, byId))
      attrs.push(`ltail=${clusterName(source.id)}`)
    if (head && hasCluster(head) && !within(edge.source, head.id, byId))
      attrs.push(`lhead=${clusterName(head.id)}`)
    if (edge.kind === 'always') attrs.push('style=dashed')
    return `  ${quote(edge.source)} -> ${quote(target)} [${attrs.join(' ')}]`
  })
}

/**
 * Transitions without a target (they run actions and stay) as one dotted loop per state, one line of
 * its label per transition: Graphviz stacks several labelled loops on one node with their labels on
 * top of each other.
 */
function loopLines(edges: GraphEdge[]): string[] {
  const bySource = new Map<string, string[]>()
  for (const e of edges) bySource.set(e.source, [...(bySource.get(e.source) ?? []), edgeLabel(e)])
  return [...bySource].map(
    ([id, labels]) => `  ${quote(id)} -> ${quote(id)} [label=${quote(...labels)} style=dotted]`,
  )
}
