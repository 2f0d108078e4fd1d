import type { HandlerFailure } from '../../machines/types.js'
import type { LogLevel } from '../log.js'

/** What a handler receives: plain data, the entry as stored. */
export interface HandlerMessage {
  /** Message id (producer-assigned, or the entry id when the entry has no `id` field). */
  id: string
  /** Redis stream entry id. */
  entryId: string
  stream: string
  /**
   * The `payload` field as stored (JSON by convention), or null when the entry has none; its bytes
   * (a Uint8Array) for a `payloadFormat: "binary"` consumer.
   */
  payload: string | Uint8Array | null
  headers: Record<string, string>
  /** Every other field of the entry, untouched. */
  fields: Record<string, string>
  /** 1 on the first delivery. */
  attempt: number
}

/** The second argument of a handler. */
export interface HandlerContext {
  /** Configured consumer name. */
  name: string
  /** Redis consumer name of this process. */
  consumer: string
  group: string
  /** A pino logger bound to the consumer. */
  logger: {
    info: (obj: object, msg?: string) => void
    warn: (obj: object, msg?: string) => void
    error: (obj: object, msg?: string) => void
    debug: (obj: object, msg?: string) => void
  }
  /** Fires at the handler timeout; stop work and let the promise settle. */
  signal: AbortSignal
}

/** A handler module's default export (or named `handle`). Return to ack, throw to retry. */
export type HandlerFn = (message: HandlerMessage, context: HandlerContext) => unknown

/** One pool task: a batch of one consumer. */
export interface BatchTask {
  kind: 'batch'
  module: string
  name: string
  stream: string
  group: string
  consumer: string
  timeoutMs: number
  logLevel: LogLevel
  messages: HandlerMessage[]
  /** Set to 1 (and notified) by the worker once it starts the task: a re-run's watchdog starts then. */
  started?: Int32Array
}

/** Start-up check of a handler module. */
export interface ProbeTask {
  kind: 'probe'
  module: string
}

/** A message whose handler failed: its index in the task, why, and whether to dead-letter it. */
export interface Failure {
  index: number
  error: HandlerFailure
  permanent: boolean
}

/**
 * A task's results as they cross the thread boundary: every message's duration in one typed array
 * (cloned as one block of memory: an object per message cost the main thread ~0.2 ms per 500 to
 * deserialize), and the failed ones, usually none, with their errors.
 */
export interface BatchResult {
  durations: Float64Array
  failures: Failure[]
}

export type ProbeResult =
  | { ok: true }
  | { ok: false; reason: 'no-function'; exports: string[] }
  | { ok: false; reason: 'import-failed'; error: HandlerFailure }
