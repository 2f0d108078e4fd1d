import { parseArgs } from 'node:util'

/** The scenarios, in the order they run; `--only` picks some of them. */
export const SCENARIOS = [
  'publish',
  'consume',
  'latency',
  'delays',
  'drain',
  'recovery',
  'memory',
  'scale',
] as const
export type ScenarioName = (typeof SCENARIOS)[number]

export const DEFAULTS = {
  runs: 3,
  /** Messages of the throughput scenarios (publish, consume, drain, scale); memory pushes ten times as many. */
  messages: 100_000,
  /** Delayed messages of the lateness scenario, due uniformly over 10–20 s after they are published. */
  delayed: 10_000,
}

export interface Options {
  runs: number
  messages: number
  delayed: number
  only: ScenarioName[]
  /** True when --only left some scenario out. */
  partial: boolean
  json: string | undefined
  /** Markdown report to write; undefined: none. */
  md: string | undefined
  cpuProf: string | undefined
  /** Also run the consume variants and a latency side with dedupeTtlMs 0 (what deduplication costs). */
  dedupeOff: boolean
  /** The arguments as given, for the report's command line. */
  argv: string[]
}

export const USAGE = `npm run bench -- [--only ${SCENARIOS.join(',')}] [--runs N] [--messages N] [--delayed N]
                    [--json FILE] [--md FILE | --no-md] [--cpu-prof DIR] [--dedupe-off]`

export function parseOptions(argv = process.argv.slice(2)): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      runs: { type: 'string', default: String(DEFAULTS.runs) },
      messages: { type: 'string', default: String(DEFAULTS.messages) },
      delayed: { type: 'string', default: String(DEFAULTS.delayed) },
      only: { type: 'string' },
      json: { type: 'string' },
      md: { type: 'string' },
      'no-md': { type: 'boolean', default: false },
      'cpu-prof': { type: 'string' },
      'dedupe-off': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  })
  if (values.help) {
    console.log(USAGE)
    process.exit(0)
  }
  const positive = (name: string, raw: string) => {
    const n = Number(raw)
    if (!Number.isInteger(n) || n < 1)
      throw new Error(`--${name} must be a positive whole number, got "${raw}"`)
    return n
  }
  let only: ScenarioName[] = [...SCENARIOS]
  if (values.only !== undefined) {
    const names = values.only
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
    const unknown = names.filter((n) => !(SCENARIOS as readonly string[]).includes(n))
    if (unknown.length > 0 || names.length === 0)
      throw new Error(`--only takes a comma-separated list of ${SCENARIOS.join(', ')}; got "${values.only}"`)
    only = SCENARIOS.filter((s) => names.includes(s))
  }
  const partial = only.length < SCENARIOS.length
  const runs = positive('runs', values.runs)
  if (values.md !== undefined && values['no-md']) throw new Error('give --md FILE or --no-md, not both')
  // A full run regenerates BENCHMARKS.md; a partial one writes a report only when asked to, so it never
  // replaces the committed table with a few rows.
  const md = values['no-md'] ? undefined : (values.md ?? (partial ? undefined : 'BENCHMARKS.md'))
  return {
    runs,
    messages: positive('messages', values.messages),
    delayed: positive('delayed', values.delayed),
    only,
    partial,
    json: values.json,
    md,
    cpuProf: values['cpu-prof'],
    dedupeOff: values['dedupe-off'],
    argv,
  }
}
