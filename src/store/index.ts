import type { Sequelize } from 'sequelize'
import type { Config } from '../config.js'
import { redactUrl, type Logger } from '../log.js'
import { isLocalUrl } from './connect.js'
import { connectStore } from './database.js'
import { assertMigrated, migrate } from './migrate.js'

export { createStore, isLocalUrl } from './connect.js'
export { connectStore } from './database.js'
export { migrate, revert, pendingMigrations, assertMigrated, MIGRATIONS_TABLE } from './migrate.js'
export type { Migration } from './migrate.js'
export { loadStoreSettings, type StoreSettings } from './settings.js'

/** What openStore needs of the configuration. */
export type OpenStoreConfig = Pick<Config, 'databaseUrl' | 'store'>

/**
 * The store for the daemon: connects (creating the database when the URL is local and it is
 * missing), then applies pending migrations, or with `store.migrateOnStart: false` only checks that
 * none is pending (ACK_ERR_STORE_NOT_MIGRATED). Resolves with null when `store.enabled` is false.
 * The caller owns the instance and closes it (`sequelize.close()`) on shutdown.
 */
export async function openStore(config: OpenStoreConfig, logger: Logger): Promise<Sequelize | null> {
  if (!config.store.enabled) {
    logger.info('store disabled (store.enabled=false); running without PostgreSQL')
    return null
  }
  const sequelize = await connectStore(config.databaseUrl, {
    logger,
    createIfMissing: isLocalUrl(config.databaseUrl),
  })
  try {
    if (config.store.migrateOnStart) await migrate(sequelize, { logger })
    else await assertMigrated(sequelize, { logger })
    return sequelize
  } catch (err) {
    await sequelize.close()
    throw err
  }
}

/** What `ackstate migrate` prints. */
export interface MigrateResult {
  /** The database, password redacted; absent when the store is disabled. */
  database?: string
  /** Migrations applied by this run, in order (empty when the database was up to date). */
  applied: string[]
  /** True when store.enabled is false and nothing was done. */
  disabled?: true
}

/**
 * `ackstate migrate`: applies pending migrations whatever `store.migrateOnStart` says. Does nothing
 * when the store is disabled, so an app without PostgreSQL keeps deploying with the release line.
 */
export async function runMigrations(config: OpenStoreConfig, logger: Logger): Promise<MigrateResult> {
  if (!config.store.enabled) {
    logger.info('store disabled (store.enabled=false); nothing to migrate')
    return { applied: [], disabled: true }
  }
  const sequelize = await connectStore(config.databaseUrl, {
    logger,
    createIfMissing: isLocalUrl(config.databaseUrl),
  })
  try {
    const applied = await migrate(sequelize, { logger })
    return { database: redactUrl(config.databaseUrl), applied }
  } finally {
    await sequelize.close()
  }
}
