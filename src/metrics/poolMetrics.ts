import path from 'node:path'
import { Counter, Gauge, type Registry } from 'prom-client'
import type { HandlerPool } from '../pool/handlerPool.js'

type PoolStats = ReturnType<HandlerPool['stats']>

/**
 * Each handler pool's state, read from HandlerPool.stats() on scrape (a few property reads). Pools
 * are labelled by their module (see label()): consumers sharing a module share its pool. A read
 * reserves a whole batch before it blocks in XREADGROUP, so `reserved` sits at `capacity` even while
 * the consumers wait for entries; busy handlers show as a growing queue and utilization instead.
 */
export function registerPoolMetrics(
  registry: Registry,
  pools: ReadonlyMap<string, HandlerPool>,
  configDir: string,
): void {
  // Read at each scrape: a reload puts new pools into the same map.
  const unique = () =>
    [...new Set(pools.values())].map((pool) => ({ pool, labels: { module: label(pool.module) } }))
  // `handlers/orders.mjs` rather than a deploy-specific absolute path; a module outside the config's
  // directory keeps its absolute path.
  function label(module: string): string {
    const relative = path.relative(configDir, module)
    return relative === '' || relative.startsWith('..') || path.isAbsolute(relative) ? module : relative
  }

  const gauge = (name: string, help: string, pick: (s: PoolStats) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['module'],
      registers: [registry],
      collect() {
        this.reset()
        for (const { pool, labels } of unique()) this.set(labels, pick(pool.stats()))
      },
    })
  gauge('ackstate_pool_threads', 'Worker threads of the pool.', (s) => s.threads)
  gauge(
    'ackstate_pool_queue_size',
    'Tasks (batch chunks) waiting for a free worker thread.',
    (s) => s.queueSize,
  )
  gauge(
    'ackstate_pool_utilization',
    "Piscina's utilization: mean run time of completed tasks over the pool's total capacity, 0–1.",
    (s) => s.utilization,
  )
  gauge(
    'ackstate_pool_reserved_messages',
    'Messages reserved in the pool: batches being processed, and the room a waiting read holds.',
    (s) => s.reserved,
  )
  gauge('ackstate_pool_capacity_messages', 'Messages the pool may hold at once.', (s) => s.capacity)
  new Counter({
    name: 'ackstate_pool_tasks_completed_total',
    help: 'Tasks (batch chunks) the pool completed.',
    labelNames: ['module'],
    registers: [registry],
    collect() {
      this.reset()
      for (const { pool, labels } of unique()) this.inc(labels, pool.stats().completed)
    },
  })
}
