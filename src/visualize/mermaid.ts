import type { GraphEdge, GraphNode, MachineGraph } from './graph.js'
import { edgeLabel, stateNotes } from './labels.js'

/**
 * Mermaid `stateDiagram-v2` of one or more machines: GitHub and GitLab render it inline in Markdown.
 * Each machine and each compound state is a composite state; `[*]` marks initial and final states
 * inside their composite. Every arrow is written at the top level, after all states: each state is
 * first named inside its own composite, and mermaid 11 then draws arrows that cross composite borders
 * (`fetching` inside `reading` → `processing`), checked by rendering the output in a browser.
 */

/** Mermaid state id of an XState state id: ids may only hold word characters. */
export function mermaidId(stateId: string): string {
  return stateId.replace(/\./g, '__').replace(/[^A-Za-z0-9_]/g, '_')
}

/**
 * Mermaid reads `;` as a statement end and `#…;` as an entity; `:` opens a description. Write them
 * as entities so a label with odd characters stays one label.
 */
export function mermaidText(text: string): string {
  return text.replace(/[#;:"]/g, (c) => `#${c.charCodeAt(0)};`)
}

export function toMermaid(graphs: MachineGraph[]): string {
  const lines = ['stateDiagram-v2']
  for (const graph of graphs) {
    const root = graph.nodes.find((n) => n.id === graph.id)
    if (root) emitState(root, graph.nodes, '  ', lines)
  }
  for (const graph of graphs) {
    for (const edge of graph.edges) lines.push(...edgeLines(edge))
  }
  return `${lines.join('\n')}\n`
}

function emitState(node: GraphNode, all: GraphNode[], pad: string, lines: string[]): void {
  const id = mermaidId(node.id)
  const name = mermaidText(node.parent === null ? node.id : node.key)
  const children = all.filter((n) => n.parent === node.id)
  if (children.length === 0) {
    lines.push(`${pad}state "${name}" as ${id}`)
  } else {
    lines.push(`${pad}state "${name}" as ${id} {`)
    if (node.initial) lines.push(`${pad}  [*] --> ${mermaidId(node.initial)}`)
    for (const child of children) emitState(child, all, `${pad}  `, lines)
    for (const child of children.filter((c) => c.type === 'final')) {
      lines.push(`${pad}  ${mermaidId(child.id)} --> [*]`)
    }
    lines.push(`${pad}}`)
  }
  const notes = stateNotes(node).map(mermaidText)
  if (children.length === 0) {
    // Description lines: mermaid draws them under the state's name, below a rule, inside the box.
    for (const note of notes) lines.push(`${pad}${id} : ${note}`)
  } else if (notes.length > 0) {
    // A composite state may only have a label ("Group nodes can only have label"): use a note.
    lines.push(`${pad}note right of ${id}`, ...notes.map((n) => `${pad}  ${n}`), `${pad}end note`)
  }
}

/** One arrow per target; a targetless transition (actions only) is a loop on its source. */
function edgeLines(edge: GraphEdge): string[] {
  const targets = edge.targets.length > 0 ? edge.targets : [edge.source]
  return targets.map(
    (target) => `  ${mermaidId(edge.source)} --> ${mermaidId(target)} : ${mermaidText(edgeLabel(edge))}`,
  )
}
