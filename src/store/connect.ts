import { Sequelize } from 'sequelize'
import type { Logger } from '../log.js'

/** Options of createStore. */
export interface StoreOptions {
  /** SQL goes to this logger at debug (only when debug is on: formatting every statement costs). */
  logger: Logger
  /**
   * Most connections of the pool. At least 2: migrate() holds one for its lock while umzug runs its
   * statements on another.
   */
  poolMax?: number
}

/** How long a connect may take before it fails, instead of the OS's minutes-long TCP timeout. */
export const CONNECT_TIMEOUT_MS = 10_000

/**
 * A Sequelize instance on PostgreSQL with a small pool. Nothing connects until the first query;
 * `openStore()` (index.ts) is the checked way in. Isolation in tests is per database, not per
 * schema (test/support/postgres.ts), so there is no search_path option.
 */
export function createStore(databaseUrl: string, { logger, poolMax = 5 }: StoreOptions): Sequelize {
  return new Sequelize(databaseUrl, {
    dialect: 'postgres',
    logging: logger.isLevelEnabled('debug') ? (sql: string) => logger.debug({ sql }, 'sql') : false,
    pool: { max: Math.max(2, poolMax), min: 0, idle: 10_000, acquire: CONNECT_TIMEOUT_MS + 5_000 },
    // The URL's query string (e.g. ?ssl=true) is merged over these by Sequelize.
    dialectOptions: { connectionTimeoutMillis: CONNECT_TIMEOUT_MS, application_name: 'ackstate' },
  })
}

/** `postgres://…/name` → `name` (decoded); undefined when the URL names no database. */
export function databaseName(databaseUrl: string): string | undefined {
  const name = decodeURIComponent(new URL(databaseUrl).pathname.replace(/^\//, ''))
  return name === '' ? undefined : name
}

/** The same server and login, another database (e.g. the `postgres` maintenance database). */
export function withDatabase(databaseUrl: string, database: string): string {
  const url = new URL(databaseUrl)
  url.pathname = `/${encodeURIComponent(database)}`
  return url.toString()
}

/** A database on this machine: the developer setup, where creating a missing database is safe. */
export function isLocalUrl(databaseUrl: string): boolean {
  const host = new URL(databaseUrl).hostname
  return host === '127.0.0.1' || host === 'localhost' || host === '[::1]' || host === '::1'
}

/** `"name"`, with embedded quotes doubled: a database name is an identifier, not a bind parameter. */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`
}
