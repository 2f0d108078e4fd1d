import { Writable } from 'node:stream'
import type { TestContext } from 'node:test'
import { loadConfig, type Config } from '../../src/config.js'
import { openStore } from '../../src/store/index.js'
import { createPools, probePools } from '../../src/daemon.js'
import { createLogger } from '../../src/log.js'
import { startRuntime, type Runtime, type RuntimeOptions } from '../../src/runtime.js'
import { writeConfig } from './daemon.js'
import { REDIS_URL } from './redis.js'

/** Captures pino output as parsed lines. */
export function captureLogs(): { stream: Writable; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line) lines.push(JSON.parse(line) as Record<string, unknown>)
      done()
    },
  })
  return { stream, lines }
}

/**
 * Starts the whole runtime in this process on a temp config; drained and closed when the test ends
 * (the test fails if the drain does not finish cleanly). Runs without the store unless `databaseUrl`
 * names a test database (test/support/postgres.ts): then the store is opened and migrated like the
 * daemon does, and closed with the runtime. `inspectors` observe the actors from the start (the debug hub).
 * `env` adds variables the config is loaded with (REDIS_MODE, REDIS_SENTINELS… for a topology).
 */
export async function startTestRuntime(
  t: TestContext,
  config: Record<string, unknown>,
  options: {
    databaseUrl?: string
    redisUrl?: string
    env?: Record<string, string>
    inspectors?: RuntimeOptions['inspectors']
  } = {},
): Promise<{ runtime: Runtime; logs: Record<string, unknown>[]; config: Config }> {
  const file = writeConfig(t, { logLevel: 'debug', ...config })
  const redisUrl = options.redisUrl ?? REDIS_URL
  const env = options.databaseUrl
    ? { REDIS_URL: redisUrl, DATABASE_URL: options.databaseUrl }
    : { REDIS_URL: redisUrl, ACKSTATE_STORE_ENABLED: 'false' }
  const cfg = loadConfig({ file, env: { ...env, ...options.env } })
  const { stream, lines } = captureLogs()
  const log = createLogger(cfg.logLevel, stream)
  const pools = createPools(cfg)
  await probePools(pools)
  const store = await openStore(cfg, log)
  const runtime = startRuntime(cfg, log, pools, { store, inspectors: options.inspectors })
  t.after(async () => {
    runtime.shutdown()
    const output = await runtime.done
    if (output.exitCode !== 0) throw new Error(`runtime stopped with exit code ${output.exitCode}`)
  })
  return { runtime, logs: lines, config: cfg }
}
