import type { Config, ConsumerConfig } from '../config.js'
import { HandlerPool } from './handlerPool.js'

/**
 * One pool per handler module. Consumers sharing a module share its pool: the pool takes the
 * largest `concurrency`, `maxMemoryMb` and `maxYoungMemoryMb` among them, and room for one full batch of each.
 */
export function createPools(
  settings: Pick<Config, 'logLevel' | 'databaseUrl'> & { consumers: ConsumerConfig[] },
): Map<string, HandlerPool> {
  const byModule = new Map<string, ConsumerConfig[]>()
  for (const c of settings.consumers) byModule.set(c.handler, [...(byModule.get(c.handler) ?? []), c])
  const pools = new Map<string, HandlerPool>()
  for (const [module, consumers] of byModule) {
    const pool = new HandlerPool({
      module,
      threads: Math.max(...consumers.map((c) => c.concurrency)),
      maxMemoryMb: Math.max(...consumers.map((c) => c.maxMemoryMb)),
      maxYoungMemoryMb: Math.max(...consumers.map((c) => c.maxYoungMemoryMb)),
      capacity: consumers.reduce((sum, c) => sum + c.batchSize, 0),
      logLevel: settings.logLevel,
      databaseUrl: settings.databaseUrl,
    })
    for (const c of consumers) pools.set(c.name, pool)
  }
  return pools
}

/** Checks every handler module in a worker thread; on a bad one, destroys the pools and throws its error. */
export async function probePools(pools: Map<string, HandlerPool>): Promise<void> {
  const unique = [...new Set(pools.values())]
  const results = await Promise.allSettled(unique.map((p) => p.probe()))
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed) {
    await Promise.allSettled(unique.map((p) => p.destroy()))
    throw failed.reason
  }
}
