import { Histogram, type Registry } from 'prom-client'
import type { Buckets } from './buckets.js'

/** One labelled histogram series: its labels and the counts it reads from. */
export type Series<L extends string> = readonly [Record<L, string>, Buckets]

type Rendered<L extends string> = Awaited<ReturnType<Histogram<L>['get']>>

export interface BucketsHistogramConfig<L extends string> {
  name: string
  help: string
  labelNames: readonly L[]
  buckets: readonly number[]
  registry: Registry
}

/**
 * A prom-client Histogram that renders counts kept elsewhere (Buckets) instead of observing values
 * itself, so the hot path never calls prom-client. Registered like any metric; only `get()` and
 * `getForPromString()` (which the registry prefers when present) differ from the parent's.
 */
export class BucketsHistogram<L extends string> extends Histogram<L> {
  private readonly metricName: string
  private readonly metricHelp: string

  constructor(
    config: BucketsHistogramConfig<L>,
    private readonly series: () => Iterable<Series<L>>,
  ) {
    super({
      name: config.name,
      help: config.help,
      labelNames: config.labelNames,
      buckets: [...config.buckets],
      registers: [config.registry],
    })
    this.metricName = config.name
    this.metricHelp = config.help
  }

  override get(): Promise<Rendered<L>> {
    const name = this.metricName
    const values: Rendered<L>['values'] = []
    for (const [labels, b] of this.series()) {
      let cumulative = 0
      for (let i = 0; i <= b.bounds.length; i++) {
        cumulative += b.counts[i]!
        const le = i < b.bounds.length ? b.bounds[i]! : '+Inf'
        values.push({ metricName: `${name}_bucket`, labels: { ...labels, le }, value: cumulative })
      }
      values.push({ metricName: `${name}_sum`, labels, value: b.sum })
      values.push({ metricName: `${name}_count`, labels, value: b.count })
    }
    const rendered = { name, help: this.metricHelp, type: 'histogram', aggregator: 'sum', values }
    return Promise.resolve(rendered as unknown as Rendered<L>)
  }

  getForPromString(): Promise<Rendered<L>> {
    return this.get()
  }
}
