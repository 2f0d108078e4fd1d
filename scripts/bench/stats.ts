/** Summaries of repeated runs: every figure of the benchmark is a median with its min and max. */

export interface Summary {
  median: number
  min: number
  max: number
  samples: number[]
}

export function summarise(samples: number[]): Summary {
  if (samples.length === 0) throw new Error('no samples to summarise')
  const sorted = [...samples].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, samples }
}

/** Nearest-rank percentile (p in 0–100) of an ascending array. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) throw new Error('no values for a percentile')
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!
}

/** A target on a figure: a ratio or a latency must stay on one side of a bound. */
export interface Target {
  op: '>=' | '<='
  bound: number
}

/** One line of the result table. `unit` decides the formatting: msgs/s, ms, × (a ratio), rows, msgs, MiB or %. */
export interface Row {
  scenario: string
  metric: string
  unit: 'msgs/s' | 'ms' | '×' | 'rows' | 'msgs' | 'MiB' | '%'
  summary: Summary
  target?: Target
}

/** Rows of one scenario: `row(metric, unit, values, target?)` summarises the values of the runs. */
export const rowsOf =
  (scenario: string) =>
  (metric: string, unit: Row['unit'], values: number[], target?: Target): Row => ({
    scenario,
    metric,
    unit,
    summary: summarise(values),
    ...(target ? { target } : {}),
  })

export const meets = (row: Row): boolean | undefined =>
  row.target === undefined
    ? undefined
    : row.target.op === '>='
      ? row.summary.median >= row.target.bound
      : row.summary.median <= row.target.bound

/** Per-run ratios a[i] / b[i] of paired runs (the runs of both sides interleave). */
export function pairedRatios(a: number[], b: number[]): number[] {
  if (a.length !== b.length) throw new Error('paired ratios need as many runs on both sides')
  return a.map((x, i) => x / b[i]!)
}

export function formatValue(n: number, unit: Row['unit']): string {
  if (unit === '×') return n.toFixed(2)
  if (unit === 'MiB' || unit === '%') return n.toFixed(1)
  if (unit === 'ms') return n < 100 ? n.toFixed(1) : Math.round(n).toLocaleString('en-US')
  return Math.round(n).toLocaleString('en-US')
}

export const fmt = (n: number) => Math.round(n).toLocaleString('en-US')
