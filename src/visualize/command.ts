import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, extname } from 'node:path'
import { parseArgs } from 'node:util'
import { UsageError } from '../errors.js'
import { toDot } from './dot.js'
import { buildGraph } from './graph.js'
import { toJson } from './json.js'
import { selectMachines } from './machines.js'
import { toMermaid } from './mermaid.js'

/**
 * `ackstate visualize [--machine NAME] [--format svg|mermaid|dot|json] [--out FILE]`: draws the
 * machines from their definitions. Nothing here needs Redis or a config file.
 */

export const FORMATS = ['svg', 'mermaid', 'dot', 'json'] as const
export type Format = (typeof FORMATS)[number]

/** `--out docs/consumer.svg` says the format already; `--format` wins when both are given. */
const BY_EXTENSION: Readonly<Record<string, Format>> = {
  '.svg': 'svg',
  '.mmd': 'mermaid',
  '.mermaid': 'mermaid',
  '.dot': 'dot',
  '.gv': 'dot',
  '.json': 'json',
}

export interface Rendered {
  output: string
  /** Graphviz warnings (svg only): the picture was drawn but may be wrong where they point. */
  warnings: string[]
}

/** Renders one machine (`machine`) or all of them; the command without its file handling. */
export async function visualize(options: { machine?: string; format: Format }): Promise<Rendered> {
  const graphs = selectMachines(options.machine).map(buildGraph)
  switch (options.format) {
    case 'mermaid':
      return { output: toMermaid(graphs), warnings: [] }
    case 'dot':
      return { output: toDot(graphs), warnings: [] }
    case 'json':
      return { output: toJson(graphs), warnings: [] }
    case 'svg': {
      // Loaded on demand: Graphviz is a few MB of WebAssembly that the other formats never need.
      const { renderSvg } = await import('./svg.js')
      const { svg, warnings } = await renderSvg(toDot(graphs))
      return { output: svg, warnings }
    }
  }
}

export function parseFormat(format: string | undefined, out: string | undefined): Format {
  if (format === undefined) return (out && BY_EXTENSION[extname(out).toLowerCase()]) || 'mermaid'
  if ((FORMATS as readonly string[]).includes(format)) return format as Format
  throw new UsageError('ACK_ERR_USAGE', `Unknown format "${format}". Use one of: ${FORMATS.join(', ')}.`)
}

export async function visualizeCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      machine: { type: 'string', short: 'm' },
      format: { type: 'string', short: 'f' },
      out: { type: 'string', short: 'o' },
    },
    strict: true,
  })
  const format = parseFormat(values.format, values.out)
  const { output, warnings } = await visualize({ machine: values.machine, format })
  for (const warning of warnings) process.stderr.write(`ackstate: graphviz warning: ${warning}\n`)
  if (values.out) {
    mkdirSync(dirname(values.out), { recursive: true })
    writeFileSync(values.out, output)
  } else {
    process.stdout.write(output)
  }
  return 0
}
