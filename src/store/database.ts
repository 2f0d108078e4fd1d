import type { Sequelize } from 'sequelize'
import { StoreError } from '../errors.js'
import { redactUrl, type Logger } from '../log.js'
import { createStore, databaseName, quoteIdentifier, withDatabase } from './connect.js'
import { MISSING_DATABASE, errorCodes, unavailable } from './errors.js'

/** Options of connectStore. */
export interface ConnectOptions {
  logger: Logger
  /** Create the database named in the URL when it is missing (only ever true for a local URL). */
  createIfMissing: boolean
}

/**
 * Connects and checks the connection. A missing database is created when `createIfMissing` (the local
 * developer setup: `npm start` works on a fresh PostgreSQL); otherwise, and for every other failure,
 * this throws ACK_ERR_STORE_UNAVAILABLE naming the redacted URL and what to check.
 */
export async function connectStore(databaseUrl: string, options: ConnectOptions): Promise<Sequelize> {
  const sequelize = createStore(databaseUrl, { logger: options.logger })
  try {
    try {
      await sequelize.authenticate()
    } catch (err) {
      const name = databaseName(databaseUrl)
      if (!errorCodes(err).includes(MISSING_DATABASE) || !options.createIfMissing || name === undefined) {
        throw unavailable(err, databaseUrl)
      }
      await createDatabase(databaseUrl, name, options.logger)
      await sequelize.authenticate().catch((again: unknown) => {
        throw unavailable(again, databaseUrl)
      })
    }
    return sequelize
  } catch (err) {
    await sequelize.close()
    throw err
  }
}

/** Where CREATE DATABASE can be run from: every cluster has `postgres`, and `template1` as a fallback. */
const MAINTENANCE_DATABASES = ['postgres', 'template1']

/** SQLSTATEs meaning another process created the database first (two dynos starting at once). */
const ALREADY_CREATED = ['42P04', '23505']

async function createDatabase(databaseUrl: string, name: string, logger: Logger): Promise<void> {
  let lastError: unknown
  for (const maintenance of MAINTENANCE_DATABASES) {
    const adminUrl = withDatabase(databaseUrl, maintenance)
    const admin = createStore(adminUrl, { logger, poolMax: 2 })
    try {
      await admin.query(`CREATE DATABASE ${quoteIdentifier(name)}`)
      logger.info({ database: name, url: redactUrl(databaseUrl) }, 'created the missing database')
      return
    } catch (err) {
      const codes = errorCodes(err)
      if (ALREADY_CREATED.some((c) => codes.includes(c))) return
      lastError = err
      if (!codes.includes(MISSING_DATABASE)) break
    } finally {
      await admin.close()
    }
  }
  const reason = lastError instanceof Error ? lastError.message : String(lastError)
  throw new StoreError(
    'ACK_ERR_STORE_UNAVAILABLE',
    `Database "${name}" does not exist at ${redactUrl(databaseUrl)} and creating it failed: ${reason}. ` +
      `Create it by hand (\`createdb ${name}\`), give the user the CREATEDB privilege, or fix DATABASE_URL.`,
    { cause: lastError },
  )
}
