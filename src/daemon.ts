import { rmSync, writeFileSync } from 'node:fs'
import type { Server } from 'node:http'
import { loadConfig, printableConfig } from './config.js'
import { DebugHub } from './debug/hub.js'
import { startHttp } from './http/server.js'
import { createLogger } from './log.js'
import { applyHeapGrowth } from './memory.js'
import { createMetrics } from './metrics/index.js'
import { createPools, probePools } from './pool/pools.js'
import { startRuntime } from './runtime.js'
import { installSignals } from './signals.js'
import { openStore } from './store/index.js'

export { createPools, probePools } from './pool/pools.js'

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
  applyHeapGrowth(config.memory.heapGrowingPercent)
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
  // Metrics are read over HTTP too; without a port the runtime is spared the counting.
  const metrics = config.port !== null ? createMetrics(log) : undefined
  const inspectors = [debug?.observe, metrics?.inspector].filter((o) => o !== undefined)
  const runtime = startRuntime(config, log, pools, { store, inspectors })
  metrics?.attach({ runtime, pools, store })
  let server: Server | undefined
  if (config.port !== null) server = await startHttp(config.port, runtime, log, { debug, metrics })
  if (debug) log.info({ path: '/debug' }, 'debug page enabled')

  const removeSignals = installSignals(runtime, log, env)
  // `ackstate reload` finds the daemon through this file.
  const pidFile = env.ACKSTATE_PID_FILE
  if (pidFile) writeFileSync(pidFile, `${process.pid}\n`)

  try {
    const output = await runtime.done
    if (output.failure) log.error({ failure: output.failure }, 'supervisor stopped after a failure')
    log.info({ exitCode: output.exitCode, timedOut: output.timedOut }, 'stopped')
    return output.exitCode
  } finally {
    removeSignals()
    if (pidFile) rmSync(pidFile, { force: true })
    // Open event streams would keep server.close() waiting.
    debug?.close()
    server?.close()
    metrics?.close()
  }
}
