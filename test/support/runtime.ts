import { Writable } from 'node:stream'
import type { TestContext } from 'node:test'
import { loadConfig } from '../../src/config.js'
import { createPools, probePools } from '../../src/daemon.js'
import { createLogger } from '../../src/log.js'
import { startRuntime, type Runtime } from '../../src/runtime.js'
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
 * (the test fails if the drain does not finish cleanly).
 */
export async function startTestRuntime(
  t: TestContext,
  config: Record<string, unknown>,
): Promise<{ runtime: Runtime; logs: Record<string, unknown>[] }> {
  const file = writeConfig(t, { logLevel: 'debug', ...config })
  const cfg = loadConfig({ file, env: { REDIS_URL } })
  const { stream, lines } = captureLogs()
  const log = createLogger(cfg.logLevel, stream)
  const pools = createPools(cfg)
  await probePools(pools)
  const runtime = startRuntime(cfg, log, pools)
  t.after(async () => {
    runtime.shutdown()
    const output = await runtime.done
    if (output.exitCode !== 0) throw new Error(`runtime stopped with exit code ${output.exitCode}`)
  })
  return { runtime, logs: lines }
}
