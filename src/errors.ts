/**
 * Every error ackstate raises carries a stable `code`; code branches on `err.code`, never on the
 * message text. docs/errors.md lists each code with its remedy (a unit test keeps the two in step).
 */
export const ERROR_CODES = [
  'ACK_ERR_CONFIG',
  'ACK_ERR_CONFIG_FILE',
  'ACK_ERR_HANDLER_NOT_FOUND',
  'ACK_ERR_HANDLER_INVALID',
  'ACK_ERR_HANDLER_IMPORT',
  'ACK_ERR_HANDLER_FAILED',
  'ACK_ERR_HANDLER_TIMEOUT',
  'ACK_ERR_HANDLER_CRASHED',
  'ACK_ERR_PERMANENT',
  'ACK_ERR_ENTRY_GONE',
  'ACK_ERR_PAYLOAD_MISSING',
  'ACK_ERR_PAYLOAD_INVALID',
  'ACK_ERR_PAYLOAD_TOO_LARGE',
  'ACK_ERR_DLQ_NOT_FOUND',
  'ACK_ERR_REDIS_UNAVAILABLE',
  'ACK_ERR_REDIS_OUT_OF_MEMORY',
  'ACK_ERR_REDIS_COMMAND',
  'ACK_ERR_GROUP_MISSING',
  'ACK_ERR_PUBLISH_INVALID',
  'ACK_ERR_STORE_UNAVAILABLE',
  'ACK_ERR_STORE_NOT_MIGRATED',
  'ACK_ERR_STORE_MIGRATION_FAILED',
  'ACK_ERR_USAGE',
] as const

export type ErrorCode = (typeof ERROR_CODES)[number]

export class RuntimeError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options)
    this.name = new.target.name
  }
}

/** The configuration is invalid; raised before anything connects. */
export class ConfigError extends RuntimeError {}

/** A handler module could not be loaded, failed, timed out or crashed its worker. */
export class HandlerError extends RuntimeError {}

/** Redis refused a command or could not be reached. */
export class BrokerError extends RuntimeError {}

/** A message given to publish() is not valid. */
export class PublishError extends RuntimeError {}

/** PostgreSQL could not be reached, lacks the database or its tables, or a migration failed. */
export class StoreError extends RuntimeError {}

/** An entry cannot be a message (no payload, not JSON, too large): dead-lettered before any handler ran. */
export class PayloadError extends RuntimeError {}

/** A command line could not be understood. */
export class UsageError extends RuntimeError {}

/**
 * Throw this from a handler when retrying cannot help (a malformed order, a deleted account): the
 * message goes to the dead-letter stream at once instead of being retried.
 */
export class PermanentError extends Error {
  readonly code = 'ACK_ERR_PERMANENT'
  constructor(message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'PermanentError'
  }
}

/** True for a PermanentError, also one created by another copy of this module (a handler's own install). */
export function isPermanentError(err: unknown): boolean {
  return (
    typeof err === 'object' &&
    err !== null &&
    ((err as { code?: unknown }).code === 'ACK_ERR_PERMANENT' ||
      (err as { name?: unknown }).name === 'PermanentError')
  )
}

/** Rebuilds an error that crossed the thread boundary as a plain envelope, for logs and callers. */
export function reviveError(failure: { name: string; code: string; message: string; stack?: string }): Error {
  const err = Object.assign(new Error(failure.message), { code: failure.code })
  err.name = failure.name
  if (failure.stack) err.stack = failure.stack
  return err
}
