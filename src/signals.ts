import { loadConfig } from './config.js'
import { stateName } from './inspect.js'
import type { Logger } from './log.js'
import type { Runtime } from './runtime.js'

/**
 * The daemon's signals:
 * - SIGTERM, SIGINT: drain and stop within shutdown.timeoutMs; a repeat does not restart the drain.
 * - SIGHUP: re-read and validate the config file and apply it without a restart (Runtime.reload); an
 *   invalid config is refused with one log line and the running one stays.
 * - SIGUSR2: log every actor's current state and counters.
 * Returns a function that removes the handlers.
 */
export function installSignals(runtime: Runtime, log: Logger, env: NodeJS.ProcessEnv): () => void {
  let draining = false
  let reloading = false

  const onStop = (signal: NodeJS.Signals) => {
    if (draining) {
      log.info({ signal }, 'already draining; signal ignored')
      return
    }
    draining = true
    const { timeoutMs } = runtime.config().shutdown
    log.info({ signal, timeoutMs }, 'draining')
    // Last resort: whatever happens, the process is gone before the platform's SIGKILL.
    setTimeout(() => {
      log.fatal({ timeoutMs }, 'shutdown did not complete in time; exiting')
      process.exit(1)
    }, timeoutMs - 100).unref()
    runtime.shutdown()
  }

  const onReload = () => {
    if (draining) return
    if (reloading) {
      log.warn('a reload is already running; signal ignored')
      return
    }
    reloading = true
    void reload(runtime, log, env).finally(() => {
      reloading = false
    })
  }

  const onDump = () => dumpStates(runtime, log)

  process.on('SIGTERM', onStop)
  process.on('SIGINT', onStop)
  process.on('SIGHUP', onReload)
  process.on('SIGUSR2', onDump)
  return () => {
    process.off('SIGTERM', onStop)
    process.off('SIGINT', onStop)
    process.off('SIGHUP', onReload)
    process.off('SIGUSR2', onDump)
  }
}

async function reload(runtime: Runtime, log: Logger, env: NodeJS.ProcessEnv): Promise<void> {
  const file = runtime.config().file
  try {
    const plan = await runtime.reload(loadConfig({ file, env }))
    if (plan.needsRestart.length > 0) {
      log.warn({ keys: plan.needsRestart }, 'changed config keys apply only after a restart')
    }
    log.info(
      {
        file,
        added: plan.added.map((c) => c.name),
        removed: plan.removed,
        changed: plan.changed.map((c) => c.name),
        unchanged: plan.unchanged,
      },
      'config reloaded',
    )
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err)
    const code = (err as { code?: unknown }).code
    log.error({ file, code, reason: message }, 'reload refused; the running config stays')
  }
}

/** One log line per actor: id, state, counters. */
export function dumpStates(runtime: Runtime, log: Logger): void {
  const root = runtime.actor.getSnapshot()
  log.info(
    { actor: 'supervisor', state: stateName(root.value), running: root.context.running },
    'actor state',
  )
  for (const [id, child] of Object.entries(root.children)) {
    const snap = (
      child as { getSnapshot(): { value?: unknown; context?: Record<string, unknown> } } | undefined
    )?.getSnapshot()
    if (!snap) continue
    const context = snap.context ?? {}
    log.info(
      {
        actor: id,
        state: stateName(snap.value),
        ...(context.stats ? { stats: context.stats } : {}),
        ...(Array.isArray(context.batch) ? { inFlight: context.batch.length } : {}),
      },
      'actor state',
    )
  }
}
