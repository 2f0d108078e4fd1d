import convict from 'convict'
import { ConfigError } from '../errors.js'
import type { LogLevel } from '../log.js'
import { describeConfigError, loadConfig, schema, type Config } from '../config.js'

/** The part of the configuration the store needs. */
export type StoreSettings = Pick<Config, 'databaseUrl' | 'store' | 'logLevel'>

/** Options of loadStoreSettings. */
export interface StoreSettingsOptions {
  /** Config file; falls back to env.ACKSTATE_CONFIG, then to the environment and defaults alone. */
  file?: string
  /** Environment to read (tests pass their own). */
  env?: NodeJS.ProcessEnv
}

/**
 * Settings for `ackstate migrate`. With a config file, the whole file is validated as for `start`
 * (a release phase that would boot a broken config fails early). Without one, DATABASE_URL and the
 * store's variables are enough: a release phase or a developer needs no config file to migrate.
 */
export function loadStoreSettings({ file, env = process.env }: StoreSettingsOptions = {}): StoreSettings {
  if (file ?? env.ACKSTATE_CONFIG) {
    const { databaseUrl, store, logLevel } = loadConfig({ file, env })
    return { databaseUrl, store, logLevel }
  }
  const subset = { databaseUrl: schema.databaseUrl, logLevel: schema.logLevel, store: schema.store }
  const conf = convict(subset, { env, args: [] })
  try {
    conf.validate({ allowed: 'strict' })
  } catch (err) {
    throw new ConfigError(
      'ACK_ERR_CONFIG',
      `Invalid environment (no config file given): ${describeConfigError(err)}`,
      { cause: err },
    )
  }
  return {
    databaseUrl: conf.get('databaseUrl'),
    logLevel: conf.get('logLevel') as LogLevel,
    store: { enabled: conf.get('store.enabled'), migrateOnStart: conf.get('store.migrateOnStart') },
  }
}
