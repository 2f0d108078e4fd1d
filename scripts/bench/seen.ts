import { existsSync, readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { percentile, rowsOf, type Row } from './stats.js'

/** One line of scripts/bench/recordSeen.mjs: when the handler saw a message. */
export interface Seen {
  id: string
  /** The `deliver-at` header in epoch ms, NaN when the message was not delayed. */
  deliverAt: number
  /** The entry id's ms timestamp (the XADD). */
  entryMs: number
  /** Epoch ms (sub-ms precision) when the handler started. */
  seen: number
  /** The payload's `t`: epoch ms when it was published, NaN when absent. */
  sent: number
}

/** The handler's lines, one per distinct message (a duplicate delivery counts at its first sighting). */
export function parseSeen(lines: string[], n: number): Seen[] {
  const byId = new Map<string, Seen>()
  for (const line of lines) {
    const [id, deliverAt, entryMs, seen, sent] = line.split(' ')
    const s = {
      id: id!,
      deliverAt: Number(deliverAt),
      entryMs: Number(entryMs),
      seen: Number(seen),
      sent: Number(sent),
    }
    if (!byId.has(s.id)) byId.set(s.id, s)
  }
  if (byId.size !== n) throw new Error(`the handler saw ${byId.size} distinct messages, expected ${n}`)
  return [...byId.values()]
}

/** Waits until the handler wrote `n` lines to `file`; `check` non-null aborts (the daemon died). */
export async function waitForLines(
  file: string,
  n: number,
  check: () => Promise<string | null>,
  timeoutMs: number,
): Promise<string[]> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []
    if (lines.length >= n) return lines
    const dead = await check()
    if (dead) throw new Error(dead)
    if (performance.now() > deadline) throw new Error(`the handler saw ${lines.length} of ${n} messages`)
    await sleep(200)
  }
}

/** p50, p99 and max of some values, each pushed onto the series of its own. */
export interface Spread {
  p50: number[]
  p99: number[]
  max: number[]
}

export const spread = (): Spread => ({ p50: [], p99: [], max: [] })

export function pushSpread(into: Spread, values: number[]): void {
  const sorted = [...values].sort((a, b) => a - b)
  into.p50.push(percentile(sorted, 50))
  into.p99.push(percentile(sorted, 99))
  into.max.push(sorted.at(-1)!)
}

/** The last run's p50, p99 and max, for a progress line. */
export const describeSpread = (s: Spread) =>
  `p50 ${s.p50.at(-1)!.toFixed(1)} ms, p99 ${s.p99.at(-1)!.toFixed(1)} ms, max ${s.max.at(-1)!.toFixed(1)} ms`

/** Rows p50, p99 and max (ms) of a spread over the runs; `p99Bound` is a target on the p99. */
export function spreadRows(
  scenario: string,
  metric: (p: 'p50' | 'p99' | 'max') => string,
  s: Spread,
  p99Bound?: number,
): Row[] {
  const row = rowsOf(scenario)
  return (['p50', 'p99', 'max'] as const).map((p) =>
    row(
      metric(p),
      'ms',
      s[p],
      p === 'p99' && p99Bound !== undefined ? { op: '<=', bound: p99Bound } : undefined,
    ),
  )
}
