import path from 'node:path'
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client'
import type { Sequelize } from 'sequelize'
import type { InspectionEvent } from 'xstate'
import type { Logger } from '../log.js'
import type { HandlerPool } from '../pool/handlerPool.js'
import { connectRedis, type RedisClient } from '../redis/connect.js'
import type { Runtime } from '../runtime.js'
import { metricsInspector } from './inspector.js'
import { registerPoolMetrics } from './poolMetrics.js'
import { registerRedisMetrics } from './redisMetrics.js'
import { registerRuntimeMetrics } from './runtimeMetrics.js'
import { registerStoreMetrics } from './storeMetrics.js'
import { ensureTotals, type ConsumerTotals } from './totals.js'

/** What the metrics read from once the runtime started. */
export interface MetricsSources {
  /** The started runtime; its `config()` (which a reload replaces) names the consumers to report. */
  runtime: Runtime
  /** The handler pools by consumer; a reload switches pools in this same map. */
  pools: ReadonlyMap<string, HandlerPool>
  /** The daemon's store; without it the backup gauges are not registered. */
  store?: Sequelize | null
}

/** The daemon's Prometheus metrics (GET /metrics). */
export interface Metrics {
  readonly registry: Registry
  /** Pass to `startRuntime(…, { inspectors: [metrics.inspector] })`: it feeds the counters. */
  readonly inspector: (ev: InspectionEvent) => void
  /** Registers the collectors that read the runtime, its pools, Redis and the store. Once. */
  attach(sources: MetricsSources): void
  /** Closes the Redis connection the collectors opened. */
  close(): void
}

/**
 * Builds the registry in two steps, because the inspector must exist before the runtime starts (it
 * sees the actors from their first snapshot) while the collectors read the started runtime.
 *
 * Nothing is collected on a timer: Redis and PostgreSQL are queried when Prometheus scrapes (cached
 * briefly, one round trip per source), counters and histograms are plain numbers the inspector adds to
 * once per batch. Process metrics are prom-client's defaults, unprefixed (`process_*`, `nodejs_*`:
 * memory, CPU, event-loop delay from perf_hooks.monitorEventLoopDelay) so stock Node.js dashboards
 * work; everything ackstate adds is `ackstate_*`.
 */
export function createMetrics(log: Logger): Metrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const totals = new Map<string, ConsumerTotals>()
  let redis: RedisClient | undefined
  let closed = false

  return {
    registry,
    inspector: metricsInspector(totals),
    attach({ runtime, pools, store }) {
      if (redis) throw new Error('metrics are already attached to a runtime')
      const config = runtime.config()
      // Every configured consumer has its series (at 0) from the first scrape.
      for (const c of config.consumers) ensureTotals(totals, c)
      registerRuntimeMetrics(registry, totals, runtime)
      registerPoolMetrics(registry, pools, path.dirname(config.file))
      // Its own connection: a scrape never queues behind the consumers' commands, and the command
      // timeout bounds a scrape while Redis hangs. It connects on the first scrape.
      const open = () => connectRedis(config, 'metrics', log, { commandTimeout: 2_000, lazyConnect: true })
      redis = open()
      // A Cluster client that reached no node for a while ends; the next scrape opens a new one.
      const current = () => (redis?.status === 'end' && !closed ? (redis = open()) : redis!)
      const targets = () =>
        runtime.config().consumers.map((c) => ({ consumer: c.name, stream: c.stream, group: c.group }))
      const probes: [string, () => Promise<boolean>][] = [
        ['redis', registerRedisMetrics(registry, current, targets, log)],
      ]
      if (store) probes.push(['postgresql', registerStoreMetrics(registry, store, log)])
      new Gauge({
        name: 'ackstate_collector_up',
        help: 'Whether the last scrape could read this source (redis, postgresql); 0: its gauges are absent.',
        labelNames: ['source'],
        registers: [registry],
        async collect() {
          const results = await Promise.all(
            probes.map(async ([source, probe]) => [source, await probe()] as const),
          )
          for (const [source, ok] of results) this.set({ source }, ok ? 1 : 0)
        },
      })
    },
    close: () => {
      closed = true
      redis?.disconnect()
    },
  }
}
