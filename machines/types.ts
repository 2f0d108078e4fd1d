/**
 * Plain data shared by the machines and their implementations. Everything here is JSON-serialisable:
 * machine context must survive a snapshot, so no clients, loggers or class instances live in it.
 */

/** One stream entry as read from Redis, already decoded into the wire format of ARCHITECTURE.md. */
export interface Entry {
  /** Message id: the `id` field when the producer set one, otherwise the entry id. */
  id: string
  /** Redis stream entry id, e.g. `1700000000000-0`. */
  entryId: string
  /** The `payload` field as stored, or null when the entry has none. */
  payload: string | null
  /**
   * `base64`: read by a `payloadFormat: "binary"` consumer, `payload` holds the stored bytes
   * base64-encoded (context stays plain JSON); the handler receives them as a Uint8Array.
   */
  payloadEncoding?: 'base64'
  /** The `headers` field parsed as a JSON object of strings (empty when absent). */
  headers: Record<string, string>
  /** Every other field of the entry, passed through untouched. */
  fields: Record<string, string>
  /** Delivery attempt, 1 for a first delivery. */
  attempt: number
  /** The entry was deleted (XDEL, trimming) while pending: its fields are lost. */
  gone?: boolean
}

/** The error a handler raised, rebuilt from the envelope that crossed the thread boundary. */
export interface HandlerFailure {
  name: string
  code: string
  message: string
  stack?: string
}

/** What happened to one message of a batch. */
export type Outcome =
  | {
      entryId: string
      id: string
      status: 'ok'
      durationMs: number
      /**
       * Acked without running: the group completed this id already (`done`), or another entry
       * holding its claim is completing it (`in-progress`: that entry's outcome decides whether the
       * message is done, so this one is only acked and confirms nothing).
       */
      duplicate?: 'done' | 'in-progress'
    }
  | {
      entryId: string
      id: string
      status: 'retry'
      durationMs: number
      error: HandlerFailure
      attempt: number
    }
  | {
      entryId: string
      id: string
      status: 'dead'
      durationMs: number
      error: HandlerFailure
      attempt: number
    }

/** Static settings of one consumer actor, fixed when the supervisor spawns it. */
export interface ConsumerInput {
  /** Configured consumer name (unique within the config), e.g. `orders`. */
  name: string
  /** Stream key as configured. */
  stream: string
  /** Consumer group name. */
  group: string
  /** Redis consumer name: unique per process (host, pid, boot id). */
  consumer: string
  /** Largest batch one read may return. */
  batchSize: number
  /** How long one XREADGROUP blocks, in ms. */
  blockMs: number
  /** Deliveries before a failing message is dead-lettered. */
  maxAttempts: number
}

/** Input of the readBatch actor. */
export interface ReadInput {
  name: string
  stream: string
  group: string
  consumer: string
  count: number
  blockMs: number
}

/** Input of the claimDue actor: this consumer's retries that are due, and orphans handed to it. */
export interface ClaimInput {
  name: string
  stream: string
  group: string
  consumer: string
  count: number
}

/** Input of the processBatch actor. */
export interface ProcessInput {
  name: string
  stream: string
  group: string
  consumer: string
  entries: Entry[]
}

/** Input of the ackMessages, deadLetter and recordRetries actors. */
export interface SettleInput {
  name: string
  stream: string
  group: string
  consumer: string
  outcomes: Outcome[]
  /** The entries those outcomes belong to, in the same order. */
  entries: Entry[]
}

/** Input of the ensureGroup and closeConsumer actors. */
export interface ConsumerRef {
  name: string
  stream: string
  group: string
  consumer: string
}

/** Error codes a machine branches on. Implementations put one of these on `err.code`. */
export const BROKER_UNAVAILABLE = 'ACK_ERR_REDIS_UNAVAILABLE'
/** Redis refuses writes for lack of memory (`noeviction`): like unavailable, wait and retry. */
export const BROKER_FULL = 'ACK_ERR_REDIS_OUT_OF_MEMORY'
export const GROUP_MISSING = 'ACK_ERR_GROUP_MISSING'

/** Reads `code` off an unknown error value without trusting its shape. */
export function errorCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = error.code
    return typeof code === 'string' ? code : undefined
  }
  return undefined
}

/** Settings of the reclaimer actor. */
export interface ReclaimInput {
  /** This daemon's Redis consumer name: whose heartbeat to renew, who receives orphans. */
  consumer: string
  intervalMs: number
  heartbeatTtlMs: number
  /** The configured consumers: each stream and group to watch, and who consumes it here. */
  targets: { name: string; stream: string; group: string }[]
}

/** What one reclaim pass did. */
export interface ReclaimResult {
  /** Entries handed over from dead consumers. */
  reclaimed: number
  /** Dead consumers removed from their group (their PEL was empty). */
  removedConsumers: number
  /** Configured consumer names that received entries and should scan their PEL now. */
  consumers: string[]
}

/** Settings of the republisher actor. */
export interface RepublishInput {
  /** This daemon's consumer name: owner of the rows it re-sends (its heartbeat is the reclaimer's). */
  consumer: string
  intervalMs: number
  /** Rows per pass. */
  batchSize: number
  /** A row of a dead (or disowning) publisher is re-sent once it is this old. */
  republishAfterMs: number
  /** A pending row this old is re-sent whoever owns it: its sent mark never landed. */
  staleAfterMs: number
}

/** What one republish pass did. */
export interface RepublishResult {
  resent: number
}

/** Settings of the delay scheduler. */
export interface DelayInput {
  /** This daemon's consumer name: owner of the backup rows of released messages. */
  consumer: string
  /** Rows released per pass. */
  batchSize: number
  /** Longest sleep between passes, a safety net for a missed notification. */
  maxIdleMs: number
}

/** What one release pass did, and when the next row is due. */
export interface ReleaseResult {
  released: number
  /** ms until the next pending row is due (0: due now), or null when none is pending. */
  nextDueInMs: number | null
  /** Clock reading (epoch ms) the pass ended at; with nextDueInMs it fixes when to wake. */
  now: number
}
