import { visualize } from '../visualize/command.js'
import { MACHINES } from '../visualize/machines.js'

/**
 * The chart of each machine the debug page draws: the same SVG `ackstate visualize --format svg`
 * renders from the machine definition, so the live page and docs/machines/ cannot disagree. Graphviz
 * (WebAssembly) takes a moment per machine, so each is rendered once, on first request, and kept.
 */

const cache = new Map<string, Promise<string>>()

/** Names `chartSvg` accepts: the visualize registry's (`consumer`, `supervisor`, `reclaimer`). */
export const CHART_NAMES: readonly string[] = Object.keys(MACHINES)

export function chartSvg(name: string): Promise<string> {
  let svg = cache.get(name)
  if (!svg) {
    svg = visualize({ machine: name, format: 'svg' }).then((r) => r.output)
    // A failed render is not cached: the next request tries again.
    svg.catch(() => cache.delete(name))
    cache.set(name, svg)
  }
  return svg
}
