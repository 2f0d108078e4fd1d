import type { Server } from 'node:http'
import { loadConfig, printableConfig, type Config } from './config.js'
import { DebugHub } from './debug/hub.js'
import { startHttp } from './http/server.js'
import { createLogger } from './log.js'
import { HandlerPool } from './pool/handlerPool.js'
import { startRuntime } from './runtime.js'
import { openStore } from './store/index.js'

/**
 * One pool per handler module. Consumers sharing a module share its pool: the pool takes the
 * largest `concurrency` and `maxMemoryMb` among them, and room for one full batch of each.
 */
export function createPools(config: Config): Map<string, HandlerPool> {
  const byModule = new Map<string, Config['consumers']>()
  for (const c of config.consumers) byModule.set(c.handler, [...(byModule.get(c.handler) ?? []), c])
  const pools = new Map<string, HandlerPool>()
  for (const [module, consumers] of byModule) {
    const pool = new HandlerPool({
      module,
      threads: Math.max(...consumers.map((c) => c.concurrency)),
      maxMemoryMb: Math.max(...consumers.map((c) => c.maxMemoryMb)),
      capacity: consumers.reduce((sum, c) => sum + c.batchSize, 0),
      logLevel: config.logLevel,
    })
    for (const c of consumers) pools.set(c.name, pool)
  }
  return pools
}

/** Checks every handler module in a worker thread; a bad one stops start-up before anything connects. */
export async function probePools(pools: Map<string, HandlerPool>): Promise<void> {
  const unique = [...new Set(pools.values())]
  const results = await Promise.allSettled(unique.map((p) => p.probe()))
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed) {
    await Promise.allSettled(unique.map((p) => p.destroy()))
    throw failed.reason
  }
}

export interface DaemonOptions {
  configFile?: string
  env?: NodeJS.ProcessEnv
}

/**
 * `ackstate start`: config → logger → pools (handlers checked) → supervisor → signals. Resolves
 * with the process exit code once the supervisor stopped.
 */
export async function runDaemon({ configFile, env = process.env }: DaemonOptions): Promise<number> {
  const config = loadConfig({ file: configFile, env })
  const log = createLogger(config.logLevel)
  const pools = createPools(config)
  await probePools(pools)
  log.info({ config: printableConfig(config) }, 'starting')
  let store
  try {
    store = await openStore(config, log)
  } catch (err) {
    await Promise.allSettled([...new Set(pools.values())].map((p) => p.destroy()))
    throw err
  }

  // The debug page is read over HTTP: without a port nobody could see what the hub would collect.
  const debug = config.port !== null && config.debug.enabled ? new DebugHub() : undefined
  const runtime = startRuntime(config, log, pools, { store, inspectors: debug ? [debug.observe] : [] })
  let server: Server | undefined
  if (config.port !== null) server = await startHttp(config.port, runtime, log, { debug })
  if (debug) log.info({ path: '/debug' }, 'debug page enabled')

  let signalled = false
  const onStop = (signal: NodeJS.Signals) => {
    if (signalled) {
      log.info({ signal }, 'already draining; signal ignored')
      return
    }
    signalled = true
    log.info({ signal, timeoutMs: config.shutdown.timeoutMs }, 'draining')
    // Last resort: whatever happens, the process is gone before the platform's SIGKILL.
    setTimeout(() => {
      log.fatal({ timeoutMs: config.shutdown.timeoutMs }, 'shutdown did not complete in time; exiting')
      process.exit(1)
    }, config.shutdown.timeoutMs - 100).unref()
    runtime.shutdown()
  }
  process.on('SIGTERM', onStop)
  process.on('SIGINT', onStop)

  try {
    const output = await runtime.done
    if (output.failure) log.error({ failure: output.failure }, 'supervisor stopped after a failure')
    log.info({ exitCode: output.exitCode, timedOut: output.timedOut }, 'stopped')
    return output.exitCode
  } finally {
    process.off('SIGTERM', onStop)
    process.off('SIGINT', onStop)
    // Open event streams would keep server.close() waiting.
    debug?.close()
    server?.close()
  }
}
