import { instance } from '@viz-js/viz'
import { RuntimeError } from '../errors.js'

/**
 * SVG from DOT with Graphviz compiled to WebAssembly (@viz-js/viz): no `dot` binary to install and
 * nothing downloaded at run time, so the command and its tests work on any machine with node_modules.
 */

export interface SvgResult {
  svg: string
  /** Graphviz warnings, e.g. an ignored `lhead`: the picture was drawn but may be wrong there. */
  warnings: string[]
}

export async function renderSvg(dot: string): Promise<SvgResult> {
  const viz = await instance()
  const result = viz.render(dot, { format: 'svg', engine: 'dot' })
  const messages = result.errors.map((e) => e.message.trim())
  if (result.status !== 'success') {
    throw new RuntimeError('ACK_ERR_USAGE', `Graphviz could not render the machines: ${messages.join('; ')}`)
  }
  return { svg: result.output, warnings: messages }
}
