import { workerData } from 'node:worker_threads'
import type { QueryTypes, Sequelize, Transaction } from 'sequelize'
import { ConfigError, StoreError } from './errors.js'
import { createLogger, redactUrl } from './log.js'
import { errorCodes, isConnectionFailure, unavailable } from './store/errors.js'

/** What the effect of `exactlyOnce()` runs its SQL through: the transaction that records the message. */
export interface EffectTransaction {
  /** Runs SQL in the transaction, with `$1`… bind parameters; resolves with the rows it returned. */
  query<T extends object = Record<string, unknown>>(sql: string, bind?: unknown[]): Promise<T[]>
  /** The Sequelize transaction, for models defined on `sequelize`: `{ transaction: tx.transaction }`. */
  readonly transaction: Transaction
  /** This thread's Sequelize instance (one per URL and worker thread). */
  readonly sequelize: Sequelize
}

/** Options of `exactlyOnce()`. */
export interface ExactlyOnceOptions {
  /**
   * PostgreSQL URL. Defaults to the daemon's `databaseUrl` (DATABASE_URL), which the daemon hands
   * to its worker threads, then to `process.env.DATABASE_URL`.
   */
  url?: string
  /** Most connections this worker thread opens to that URL (the first call's value counts). Default 5. */
  poolMax?: number
}

/** `applied: false`: the message was already processed, and the effect did not run. */
export type ExactlyOnceResult<T> = { applied: true; value: T } | { applied: false }

/** The part of a handler's message and context that identifies the message. */
export interface ExactlyOnceMessage {
  id: string
  stream: string
}

const CLAIM = `
INSERT INTO processed_message (stream, group_name, message_id) VALUES ($1, $2, $3)
ON CONFLICT DO NOTHING
RETURNING 1 AS inserted`

/** SQLSTATE undefined_table: processed_message is missing, migration 0004 has not run. */
const UNDEFINED_TABLE = '42P01'

/** One Sequelize per URL and thread, created on first use; module state lives per worker thread. */
const stores = new Map<string, Promise<{ sequelize: Sequelize; select: QueryTypes.SELECT }>>()

/**
 * Runs `effect` at most once per message id and consumer group, in one PostgreSQL transaction with
 * the record that the message was processed: `INSERT INTO processed_message … ON CONFLICT DO NOTHING`,
 * then the effect only if that row was new, then COMMIT. A message re-delivered after a crash between
 * the commit and the XACK finds the row and skips the effect; a transaction that fails rolls both back,
 * so a retry runs the effect again. Another delivery of the same id waits on the row's lock until the
 * first commits or rolls back. Only what the effect writes through `tx` is covered (an HTTP call it
 * makes is not). Errors from the effect pass through unchanged; a database that cannot be reached is
 * ACK_ERR_STORE_UNAVAILABLE, a missing table ACK_ERR_STORE_NOT_MIGRATED (both: the message is retried).
 */
export async function exactlyOnce<T>(
  message: ExactlyOnceMessage,
  context: { group: string; signal?: AbortSignal },
  effect: (tx: EffectTransaction) => Promise<T>,
  options: ExactlyOnceOptions = {},
): Promise<ExactlyOnceResult<T>> {
  context.signal?.throwIfAborted()
  const url = databaseUrl(options)
  const { sequelize, select } = await storeFor(url, options.poolMax ?? 5)
  const run = (transaction: Transaction) => async (sql: string, bind?: unknown[]) =>
    sequelize.query(sql, { bind, transaction, type: select, raw: true })
  let effectFailed = false
  try {
    return await sequelize.transaction(async (transaction): Promise<ExactlyOnceResult<T>> => {
      const query = run(transaction)
      let claimed: object[]
      try {
        claimed = await query(CLAIM, [message.stream, context.group, message.id])
      } catch (err) {
        throw claimError(err, url)
      }
      if (claimed.length === 0) return { applied: false }
      const tx: EffectTransaction = {
        query: query as EffectTransaction['query'],
        transaction,
        sequelize,
      }
      try {
        return { applied: true, value: await effect(tx) }
      } catch (err) {
        effectFailed = true
        throw err
      }
    })
  } catch (err) {
    // A lost connection at BEGIN or COMMIT: say so with the URL, like the daemon does.
    if (!effectFailed && !(err instanceof StoreError) && isConnectionFailure(err)) throw unavailable(err, url)
    throw err
  }
}

function databaseUrl(options: ExactlyOnceOptions): string {
  const fromDaemon = (workerData as { databaseUrl?: unknown } | null | undefined)?.databaseUrl
  const url =
    options.url ?? (typeof fromDaemon === 'string' ? fromDaemon : undefined) ?? process.env.DATABASE_URL
  if (!url) {
    throw new ConfigError(
      'ACK_ERR_CONFIG',
      'exactlyOnce() has no PostgreSQL URL: pass { url }, or set DATABASE_URL (the daemon passes its ' +
        'databaseUrl to handler threads).',
    )
  }
  return url
}

function storeFor(
  url: string,
  poolMax: number,
): Promise<{ sequelize: Sequelize; select: QueryTypes.SELECT }> {
  let store = stores.get(url)
  if (!store) {
    // Loaded on first use: a handler that only imports PermanentError does not pay for Sequelize.
    store = Promise.all([import('sequelize'), import('./store/connect.js')]).then(([{ QueryTypes }, c]) => ({
      sequelize: c.createStore(url, { logger: createLogger('silent'), poolMax }),
      select: QueryTypes.SELECT,
    }))
    stores.set(url, store)
  }
  return store
}

function claimError(err: unknown, url: string): Error {
  if (errorCodes(err).includes(UNDEFINED_TABLE)) {
    return new StoreError(
      'ACK_ERR_STORE_NOT_MIGRATED',
      `exactlyOnce(): table processed_message does not exist in ${redactUrl(url)}. Run \`ackstate migrate\` ` +
        '(or start the daemon with store.migrateOnStart) against that database.',
      { cause: err },
    )
  }
  if (isConnectionFailure(err)) return unavailable(err, url)
  return new StoreError(
    'ACK_ERR_STORE_UNAVAILABLE',
    `exactlyOnce(): recording the message in processed_message failed at ${redactUrl(url)}: ` +
      `${err instanceof Error ? err.message : String(err)}. Check the database's log.`,
    { cause: err },
  )
}
