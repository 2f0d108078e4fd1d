import { BULLMQ_CONCURRENCY } from './bullmq.js'
import { pairedRatios, summarise, type Row, type Target } from './stats.js'

/**
 * The consume variants, run in turn within each run (the starting one rotates per run). Those with
 * dedupeTtlMs 0 measure what deduplication costs; they run only with `--dedupe-off`.
 */
export const VARIANTS = [
  { key: 'raw', label: 'raw XREADGROUP→Piscina→XACK', kind: 'raw', store: false },
  { key: 'rawOn', label: 'raw XREADGROUP→Piscina→UPDATE ANY→XACK', kind: 'raw', store: true },
  { key: 'off', label: 'daemon, store off', kind: 'daemon', store: false, dedupeTtlMs: undefined },
  { key: 'off0', label: 'daemon, store off, dedupeTtlMs 0', kind: 'daemon', store: false, dedupeTtlMs: 0 },
  { key: 'on', label: 'daemon, store on', kind: 'daemon', store: true, dedupeTtlMs: undefined },
  { key: 'on0', label: 'daemon, store on, dedupeTtlMs 0', kind: 'daemon', store: true, dedupeTtlMs: 0 },
  {
    key: 'bullInline',
    label: `BullMQ Worker c${BULLMQ_CONCURRENCY}, inline no-op (jobs)`,
    kind: 'bullmq',
    processor: 'inline',
  },
  {
    key: 'bullSandboxed',
    label: `BullMQ Worker c${BULLMQ_CONCURRENCY}, sandboxed in worker threads (jobs)`,
    kind: 'bullmq',
    processor: 'sandboxed',
  },
] as const
export type Key = (typeof VARIANTS)[number]['key']

export interface Sample {
  /** msgs/s from the first ack to the last (XINFO GROUPS; BullMQ: first to last completion). */
  steady: number
  /** msgs/s from spawn (raw: pool creation) to the last ack. */
  wall: number
  /** Daemon: ms from spawn to the first ack seen. */
  startupMs?: number
  /** Store on: msgs/s from the first ack until every backup row is acked in PostgreSQL. */
  confirmed?: number
}

/** Whether a variant runs: all of them with `--dedupe-off`, else those that keep deduplication on. */
export const runsVariant = (v: (typeof VARIANTS)[number], dedupeOff: boolean) =>
  dedupeOff || !('dedupeTtlMs' in v) || v.dedupeTtlMs !== 0

/**
 * The result rows of the consume scenario: every variant's rates, then the ratios between them; a
 * variant that did not run (no samples) has no rows, nor do the ratios it is part of.
 */
export function consumeRows(samples: Record<Key, Sample[]>): Row[] {
  const of = (key: Key, field: keyof Sample) => samples[key].map((s) => s[field] ?? NaN)
  const out: Row[] = []
  for (const v of VARIANTS.filter((variant) => samples[variant.key].length > 0)) {
    out.push({
      scenario: 'consume',
      metric: `${v.label}: steady`,
      unit: 'msgs/s',
      summary: summarise(of(v.key, 'steady')),
    })
    if (v.key === 'on' || v.key === 'on0')
      out.push({
        scenario: 'consume',
        metric: `${v.label}: confirmed in PostgreSQL`,
        unit: 'msgs/s',
        summary: summarise(of(v.key, 'confirmed')),
      })
    out.push({
      scenario: 'consume',
      metric: `${v.label}: wall`,
      unit: 'msgs/s',
      summary: summarise(of(v.key, 'wall')),
    })
    if (v.kind === 'daemon')
      out.push({
        scenario: 'consume',
        metric: `${v.label}: start-up, spawn → first ack`,
        unit: 'ms',
        summary: summarise(of(v.key, 'startupMs')),
      })
  }
  const ratio = (metric: string, a: number[], b: number[], target?: Target): Row | null =>
    a.length === 0 || b.length === 0
      ? null
      : {
          scenario: 'consume',
          metric,
          unit: '×',
          summary: summarise(pairedRatios(a, b)),
          ...(target ? { target } : {}),
        }
  const ratios: (Row | null)[] = []
  const seventy: Target = { op: '>=', bound: 0.7 }
  ratios.push(
    ratio(
      'ratio daemon store off / raw, steady (dedupe 1 h)',
      of('off', 'steady'),
      of('raw', 'steady'),
      seventy,
    ),
    ratio(
      'ratio daemon store off / raw, steady (dedupeTtlMs 0)',
      of('off0', 'steady'),
      of('raw', 'steady'),
      seventy,
    ),
    ratio(
      'ratio daemon store on / raw+UPDATE, steady (dedupe 1 h)',
      of('on', 'steady'),
      of('rawOn', 'steady'),
      seventy,
    ),
    ratio(
      'ratio daemon store on / raw+UPDATE, confirmed (dedupe 1 h)',
      of('on', 'confirmed'),
      of('rawOn', 'steady'),
      seventy,
    ),
    ratio(
      'ratio daemon store on / raw+UPDATE, steady (dedupeTtlMs 0)',
      of('on0', 'steady'),
      of('rawOn', 'steady'),
      seventy,
    ),
    ratio(
      'ratio daemon store on / raw+UPDATE, confirmed (dedupeTtlMs 0)',
      of('on0', 'confirmed'),
      of('rawOn', 'steady'),
      seventy,
    ),
    // The durability issue's own target: backup confirmation on against off, the same daemon.
    ratio('ratio store on/off, steady (dedupe 1 h)', of('on', 'steady'), of('off', 'steady'), seventy),
    ratio('ratio store on/off, steady (dedupeTtlMs 0)', of('on0', 'steady'), of('off0', 'steady'), seventy),
    ratio('ratio daemon store on / BullMQ inline, steady', of('on', 'steady'), of('bullInline', 'steady'), {
      op: '>=',
      bound: 2,
    }),
    ratio(
      'ratio daemon store on / BullMQ sandboxed, steady',
      of('on', 'steady'),
      of('bullSandboxed', 'steady'),
      { op: '>=', bound: 5 },
    ),
  )
  return [...out, ...ratios.filter((r): r is Row => r !== null)]
}
