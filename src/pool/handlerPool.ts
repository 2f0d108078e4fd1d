import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Piscina } from 'piscina'
import type { Entry, Outcome } from '../../machines/types.js'
import { HandlerError } from '../errors.js'
import type { LogLevel } from '../log.js'
import { CapacityGate } from './capacityGate.js'
import { ChunkPlanner, split } from './chunks.js'
import type { BatchResult, BatchTask, HandlerMessage, ProbeResult } from './protocol.js'

const here = fileURLToPath(import.meta.url)
/** worker.js next to this file in the build, worker.ts when running from source under tsx. */
const WORKER_FILE = path.join(path.dirname(here), `worker${path.extname(here)}`)

/** How long after the handler timeout a worker that does not answer is terminated. */
const WATCHDOG_GRACE_MS = 1_000
/** A re-run task that no worker started within this long is given up (its watchdog fires). */
const START_LIMIT_MS = 30_000

export interface PoolOptions {
  /** Absolute path of the handler module. */
  module: string
  threads: number
  maxMemoryMb: number
  /** Young-generation limit per thread (maxYoungGenerationSizeMb). */
  maxYoungMemoryMb: number
  /** Messages the pool may hold at once (queued + running); reads reserve from it. */
  capacity: number
  logLevel: LogLevel
  /** The daemon's PostgreSQL URL, for `exactlyOnce()` in handlers (src/exactlyOnce.ts). */
  databaseUrl?: string
}

export interface BatchRun {
  name: string
  stream: string
  group: string
  consumer: string
  timeoutMs: number
  entries: Entry[]
}

/**
 * One Piscina pool per handler module. A batch is split into at most `threads` chunks, one task each
 * (a task per message caps throughput far below the batched path), and into fewer while its handler
 * is cheap enough that a thread hop costs more than the work it spreads (src/pool/chunks.ts).
 * Capacity is reserved before a read, so the daemon never reads more than its pools can hold: no
 * unbounded buffer, never a drop.
 */
export class HandlerPool {
  readonly module: string
  readonly gate: CapacityGate
  private readonly piscina: Piscina
  private readonly planner: ChunkPlanner
  private readonly logLevel: LogLevel

  constructor(options: PoolOptions) {
    this.module = options.module
    this.planner = new ChunkPlanner(options.threads)
    this.logLevel = options.logLevel
    this.gate = new CapacityGate(options.capacity)
    this.piscina = new Piscina({
      filename: WORKER_FILE,
      minThreads: options.threads,
      maxThreads: options.threads,
      // Every chunk of every reserved batch fits: a task is never refused for a full queue.
      maxQueue: Math.max(options.threads, options.capacity),
      idleTimeout: 60_000,
      // A bounded young generation: left to V8, a thread's semi-spaces grow from 1 to 16 MB under a
      // steady load and never shrink back, tens of MB of RSS per thread for nothing the handler keeps.
      resourceLimits: {
        maxOldGenerationSizeMb: options.maxMemoryMb,
        maxYoungGenerationSizeMb: options.maxYoungMemoryMb,
      },
      workerData: { databaseUrl: options.databaseUrl },
    })
  }

  /** Imports the module in a worker and checks that it exports a handler function. */
  async probe(): Promise<void> {
    const result = (await this.piscina.run({ kind: 'probe', module: this.module })) as ProbeResult
    if (result.ok) return
    if (result.reason === 'no-function') {
      throw new HandlerError(
        'ACK_ERR_HANDLER_INVALID',
        `Handler module ${this.module} exports no function (exports: ${result.exports.join(', ') || 'none'}). ` +
          'Export the handler as the default export or as a named export `handle`.',
      )
    }
    throw new HandlerError(
      'ACK_ERR_HANDLER_IMPORT',
      `Handler module ${this.module} threw while loading: ${result.error.name}: ${result.error.message}. ` +
        'Fix the module so that importing it succeeds.',
    )
  }

  /**
   * Runs a batch; one outcome per entry, in order. A crashed worker fails no more than the message
   * that crashed it: its chunk runs again one message per task (runChunk), never the whole pool.
   */
  async run(batch: BatchRun): Promise<Outcome[]> {
    const chunks = split(batch.entries, this.planner.chunks(batch.entries.length))
    const results = await Promise.all(chunks.map((chunk) => this.runChunk(batch, chunk)))
    return results.flat()
  }

  private async runChunk(batch: BatchRun, entries: Entry[], alone = false): Promise<Outcome[]> {
    const task: BatchTask = {
      kind: 'batch',
      module: this.module,
      name: batch.name,
      stream: batch.stream,
      group: batch.group,
      consumer: batch.consumer,
      timeoutMs: batch.timeoutMs,
      logLevel: this.logLevel,
      messages: entries.map((e) => toMessage(batch.stream, e)),
    }
    let result: BatchResult
    // The worker enforces the timeout itself, but a handler that never yields (a synchronous loop)
    // blocks its timer too: past a grace period the main thread terminates the thread. A re-run
    // after a thread death waits for replacement threads to start (and load the module): its
    // watchdog starts only when a worker takes the task.
    const limitMs = batch.timeoutMs + WATCHDOG_GRACE_MS
    const startWatch = alone ? watchFromStart(limitMs) : null
    if (startWatch) task.started = startWatch.started
    const watch = startWatch ?? watchFor(limitMs)
    const watchdog = watch.signal
    try {
      result = (await this.piscina.run(task, { signal: watchdog })) as BatchResult
      // The task's run time is its slowest message's (they start together); a re-run alone says
      // nothing about what the handler usually costs.
      if (!alone) this.planner.record(entries.length, slowest(result.durations))
    } catch (err) {
      // The worker died (process.exit, out of memory, an uncaught async throw) or was terminated by
      // the watchdog: Piscina replaces it. One message may have killed the thread for all, so a chunk
      // of several runs again one message per task, and only a message that fails alone is charged.
      // This costs a task per message, but only after a thread died; the hot path is untouched.
      if (entries.length > 1) return this.runAlone(batch, entries)
      const error = watchdog.aborted
        ? {
            name: 'HandlerError',
            code: 'ACK_ERR_HANDLER_TIMEOUT',
            message: `handler blocked its worker thread past ${batch.timeoutMs} ms; the thread was terminated`,
          }
        : {
            name: 'HandlerError',
            code: 'ACK_ERR_HANDLER_CRASHED',
            message: `handler worker crashed: ${err instanceof Error ? err.message : String(err)}`,
          }
      result = {
        durations: new Float64Array(entries.length),
        failures: entries.map((_, index) => ({ index, error, permanent: false })),
      }
    } finally {
      watch.stop()
    }
    return toOutcomes(entries, result)
  }

  /** Runs each entry as a task of its own (in parallel, bounded by the threads). */
  private async runAlone(batch: BatchRun, entries: Entry[]): Promise<Outcome[]> {
    const results = await Promise.all(entries.map((e) => this.runChunk(batch, [e], true)))
    return results.flat()
  }

  /** Counters for the debug view and metrics. */
  stats() {
    return {
      module: this.module,
      threads: this.piscina.threads.length,
      queueSize: this.piscina.queueSize,
      completed: this.piscina.completed,
      utilization: this.piscina.utilization,
      reserved: this.gate.used,
      capacity: this.gate.capacity,
    }
  }

  /** Waits for queued and running tasks, then stops the threads. */
  close(): Promise<void> {
    this.gate.close()
    return this.piscina.close()
  }

  /** Stops the threads now; tasks in flight are abandoned (their entries stay in the PEL). */
  destroy(): Promise<void> {
    this.gate.close()
    return this.piscina.destroy()
  }
}

/** Atomics.waitAsync: in Node since 16, typed only from lib ES2024 (this project builds with ES2023). */
interface AtomicsWaitAsync {
  waitAsync(
    array: Int32Array,
    index: number,
    value: number,
    timeoutMs: number,
  ): { async: false; value: string } | { async: true; value: Promise<string> }
}

/**
 * A watchdog that fires `ms` from now, until `stop()` once the task settled. Not
 * AbortSignal.timeout(): its timer cannot be cleared, so each batch would leave one behind for the
 * whole handler timeout (tens of seconds), thousands at a time under load.
 */
function watchFor(ms: number): { signal: AbortSignal; stop(): void } {
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(), ms).unref()
  return { signal: controller.signal, stop: () => clearTimeout(timer) }
}

/**
 * A watchdog that starts counting `ms` when the worker flags `started` (src/pool/worker.ts), or after
 * START_LIMIT_MS if no worker ever takes the task. `stop()` once the task settled.
 */
function watchFromStart(ms: number): { started: Int32Array; signal: AbortSignal; stop(): void } {
  const started = new Int32Array(new SharedArrayBuffer(4))
  const controller = new AbortController()
  let timer: NodeJS.Timeout | undefined
  let stopped = false
  const arm = () => {
    if (!stopped) timer = setTimeout(() => controller.abort(), ms)
  }
  const wait = (Atomics as unknown as AtomicsWaitAsync).waitAsync(started, 0, 0, START_LIMIT_MS)
  if (wait.async) void wait.value.then(arm)
  else arm()
  return {
    started,
    signal: controller.signal,
    stop() {
      stopped = true
      clearTimeout(timer)
      // Releases the wait of a task that settled without starting (a pool shut down).
      Atomics.store(started, 0, 1)
      Atomics.notify(started, 0)
    },
  }
}

function slowest(durations: Float64Array): number {
  let ms = 0
  for (const d of durations) if (d > ms) ms = d
  return ms
}

function toMessage(stream: string, e: Entry): HandlerMessage {
  return {
    id: e.id,
    entryId: e.entryId,
    stream,
    // Structured clone hands the worker a Buffer as a Uint8Array: the bytes as stored.
    payload:
      e.payloadEncoding === 'base64' && e.payload !== null ? Buffer.from(e.payload, 'base64') : e.payload,
    headers: e.headers,
    fields: e.fields,
    attempt: e.attempt,
  }
}

function toOutcomes(entries: Entry[], result: BatchResult): Outcome[] {
  if (result?.durations?.length !== entries.length) {
    const error = {
      name: 'HandlerError',
      code: 'ACK_ERR_HANDLER_CRASHED',
      message: 'worker returned no result',
    }
    return entries.map((e) => ({
      entryId: e.entryId,
      id: e.id,
      status: 'retry',
      durationMs: 0,
      error,
      attempt: e.attempt,
    }))
  }
  const outcomes = entries.map((e, i): Outcome => ({
    entryId: e.entryId,
    id: e.id,
    status: 'ok',
    durationMs: result.durations[i]!,
  }))
  for (const { index, error, permanent } of result.failures) {
    const e = entries[index]!
    outcomes[index] = {
      entryId: e.entryId,
      id: e.id,
      status: permanent ? 'dead' : 'retry',
      durationMs: result.durations[index]!,
      error,
      attempt: e.attempt,
    }
  }
  return outcomes
}
