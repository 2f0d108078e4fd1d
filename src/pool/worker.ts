/**
 * Runs inside a Piscina worker thread. It loads the user's handler module once and runs a whole
 * batch per task. It never throws raw: every result crosses the thread boundary as a plain envelope,
 * because structured clone drops an error's class and its `code`.
 */
import { pathToFileURL } from 'node:url'
import { pino, type Logger } from 'pino'
import type { HandlerFailure } from '../../machines/types.js'
import { isPermanentError } from '../errors.js'
import type { BatchResult, BatchTask, Failure, HandlerFn, ProbeResult, ProbeTask } from './protocol.js'

const modules = new Map<string, Promise<HandlerFn>>()
const loggers = new Map<string, Logger>()

/** Finds the handler function in a module: `default`, a named `handle`, or CommonJS `module.exports`. */
export function pickHandler(mod: Record<string, unknown>): HandlerFn | undefined {
  const candidates = [mod.default, mod.handle, (mod.default as Record<string, unknown> | undefined)?.handle]
  return candidates.find((c): c is HandlerFn => typeof c === 'function')
}

function load(module: string): Promise<HandlerFn> {
  let loading = modules.get(module)
  if (!loading) {
    loading = import(pathToFileURL(module).href).then((mod: Record<string, unknown>) => {
      const fn = pickHandler(mod)
      if (!fn) throw new Error(`${module} exports no handler function`)
      return fn
    })
    modules.set(module, loading)
  }
  return loading
}

/**
 * Handlers' log lines are written synchronously. Piscina pauses a worker thread between tasks (it
 * waits on Atomics, not in its event loop), so pino's default asynchronous writes sat unwritten until
 * the thread's next task, and were lost with it at shutdown if none came.
 */
let stdout: ReturnType<typeof pino.destination> | undefined

function loggerFor(task: BatchTask): Logger {
  const key = `${task.consumer}\u0000${task.logLevel}`
  let log = loggers.get(key)
  if (!log) {
    stdout ??= pino.destination({ dest: 1, sync: true })
    log = pino({ level: task.logLevel, base: { service: 'ackstate', pid: process.pid } }, stdout).child({
      actor: `consumer-${task.name}`,
      stream: task.stream,
      group: task.group,
      thread: 'handler',
    })
    loggers.set(key, log)
  }
  return log
}

export function toFailure(err: unknown): HandlerFailure {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code
    return {
      name: err.name,
      code: typeof code === 'string' ? code : 'ACK_ERR_HANDLER_FAILED',
      message: err.message,
      ...(err.stack ? { stack: err.stack } : {}),
    }
  }
  return {
    name: 'Error',
    code: 'ACK_ERR_HANDLER_FAILED',
    message: `handler threw a non-Error value: ${String(err)}`,
  }
}

/**
 * One Piscina task: a batch of messages, run concurrently; a duration per message, in order, and
 * the failures.
 * All messages of a task start together, so they share one deadline: one timer and one AbortSignal
 * per task instead of per message (per-message timers cost more than a no-op handler itself).
 * At the deadline the signal aborts and every message still running fails with a timeout.
 */
async function runBatch(task: BatchTask): Promise<BatchResult> {
  const n = task.messages.length
  const durations = new Float64Array(n)
  let fn: HandlerFn
  try {
    fn = await load(task.module)
  } catch (err) {
    const error = toFailure(err)
    return { durations, failures: task.messages.map((_, index) => ({ index, error, permanent: false })) }
  }
  if (task.started) {
    Atomics.store(task.started, 0, 1)
    Atomics.notify(task.started, 0)
  }
  const controller = new AbortController()
  const context = {
    name: task.name,
    consumer: task.consumer,
    group: task.group,
    logger: loggerFor(task),
    signal: controller.signal,
  }
  const started = performance.now()
  // A message is settled once its duration is set (> 0: performance.now() moves on); a late
  // settlement after the deadline changes nothing.
  const failures: Failure[] = []
  const settled = task.messages.map(async (message, index) => {
    try {
      await fn(message, context)
      if (durations[index] === 0) durations[index] = elapsed(started)
    } catch (err) {
      if (durations[index] !== 0) return
      durations[index] = elapsed(started)
      failures.push({ index, error: toFailure(err), permanent: isPermanentError(err) })
    }
  })
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, task.timeoutMs)
  })
  await Promise.race([Promise.all(settled), deadline])
  clearTimeout(timer)
  if (durations.includes(0)) {
    const error = {
      name: 'HandlerError',
      code: 'ACK_ERR_HANDLER_TIMEOUT',
      message: `handler did not finish within ${task.timeoutMs} ms`,
    }
    controller.abort(Object.assign(new Error(error.message), error))
    for (let index = 0; index < n; index++) {
      if (durations[index] !== 0) continue
      durations[index] = elapsed(started)
      failures.push({ index, error, permanent: false })
    }
  }
  return { durations, failures }
}

/** Milliseconds since `started`, never 0 (0 marks a message still running). */
const elapsed = (started: number) => Math.max(performance.now() - started, Number.MIN_VALUE)

/** Imports the module and reports whether it has a handler function; used at start-up. */
async function probe(task: ProbeTask): Promise<ProbeResult> {
  try {
    const mod = (await import(pathToFileURL(task.module).href)) as Record<string, unknown>
    if (pickHandler(mod)) return { ok: true }
    const exported = Object.keys(mod).filter((k) => k !== '__esModule')
    return { ok: false, reason: 'no-function', exports: exported }
  } catch (err) {
    return { ok: false, reason: 'import-failed', error: toFailure(err) }
  }
}

export default function run(task: BatchTask | ProbeTask): Promise<BatchResult | ProbeResult> {
  return task.kind === 'probe' ? probe(task) : runBatch(task)
}
