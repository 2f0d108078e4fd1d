import { readdirSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { QueryInterface, Sequelize } from 'sequelize'
import { SequelizeStorage, Umzug, type MigrationFn, type RunnableMigration } from 'umzug'
import { StoreError } from '../errors.js'
import type { Logger } from '../log.js'
import { isConnectionFailure, unavailable } from './errors.js'

/** What a migration module exports as `up` and `down`: it gets Sequelize's QueryInterface as context. */
export type Migration = MigrationFn<QueryInterface>

/**
 * `migrations/` beside `src/`: the TypeScript sources under tsx (src/store → ../../migrations), the
 * compiled dist/migrations/*.js in the build (dist/src/store → ../../migrations).
 */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url))

/** umzug records applied migrations here (a name per row). */
export const MIGRATIONS_TABLE = 'ackstate_migrations'

/** `0001-name.ts` or `0001-name.js`; `.d.ts` and `.js.map` next to the build's files do not match. */
const MIGRATION_FILE = /^(\d{4}-[A-Za-z0-9_-]+)\.(ts|js)$/

/**
 * The migrations found in `dir`, named without their extension: a database migrated from the sources
 * (`0001-x.ts`) and later from the build (`0001-x.js`) must see the same names, or the build would run
 * them all again.
 */
export function findMigrations(dir = MIGRATIONS_DIR): RunnableMigration<QueryInterface>[] {
  let files: string[]
  try {
    files = readdirSync(dir)
  } catch (err) {
    throw new StoreError(
      'ACK_ERR_STORE_MIGRATION_FAILED',
      `The migrations directory ${dir} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)}). ` +
        'The install is incomplete: build with `npm run build` so dist/migrations sits next to dist/src.',
      { cause: err },
    )
  }
  const found = files
    .map((file) => MIGRATION_FILE.exec(file))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ name: m[1]!, file: path.join(dir, m[0]) }))
    .sort((a, b) => a.name.localeCompare(b.name))
  if (found.length === 0) {
    throw new StoreError(
      'ACK_ERR_STORE_MIGRATION_FAILED',
      `No migrations (0001-….ts or .js) in ${dir}. The install is incomplete: build with \`npm run build\`.`,
    )
  }
  return found.map(({ name, file }) => ({
    name,
    path: file,
    up: async (params) => (await load(name, file)).up(params),
    down: async (params) => (await load(name, file)).down?.(params),
  }))
}

async function load(name: string, file: string): Promise<{ up: Migration; down?: Migration }> {
  const mod = (await import(pathToFileURL(file).href)) as { up?: unknown; down?: unknown }
  if (typeof mod.up !== 'function') {
    throw new StoreError('ACK_ERR_STORE_MIGRATION_FAILED', `Migration ${name} (${file}) exports no up().`)
  }
  return mod as { up: Migration; down?: Migration }
}

/** Options of the migration functions. */
export interface MigrateOptions {
  logger: Logger
  /** Where the migration files are; tests point it at their own. */
  dir?: string
}

function createMigrator(sequelize: Sequelize, { logger, dir }: MigrateOptions): Umzug<QueryInterface> {
  const umzug = new Umzug<QueryInterface>({
    migrations: findMigrations(dir),
    context: sequelize.getQueryInterface(),
    storage: new SequelizeStorage({ sequelize, modelName: MIGRATIONS_TABLE, tableName: MIGRATIONS_TABLE }),
    logger: undefined,
  })
  umzug.on('migrated', ({ name }) => logger.info({ migration: name }, 'migration applied'))
  umzug.on('reverted', ({ name }) => logger.info({ migration: name }, 'migration reverted'))
  return umzug
}

/**
 * Runs `work` while holding a transaction-scoped advisory lock. Several dynos may start (and migrate) at
 * once against one database (ARCHITECTURE invariant 8): the second waits here, then finds nothing
 * pending. The lock's transaction only holds the lock; umzug runs on other pool connections.
 */
async function underLock<T>(sequelize: Sequelize, work: () => Promise<T>): Promise<T> {
  return sequelize.transaction(async (transaction) => {
    await sequelize.query("SELECT pg_advisory_xact_lock(hashtext('ackstate migrate'))", { transaction })
    return work()
  })
}

/** Applies every pending migration; resolves with the names applied (none when up to date). */
export async function migrate(sequelize: Sequelize, options: MigrateOptions): Promise<string[]> {
  const umzug = createMigrator(sequelize, options)
  return guard(sequelize, () => underLock(sequelize, async () => (await umzug.up()).map((m) => m.name)))
}

/** Reverts the last migration, or down to and including `to` (`0`: all of them); resolves with their names. */
export async function revert(
  sequelize: Sequelize,
  options: MigrateOptions & { to?: string | 0 },
): Promise<string[]> {
  const umzug = createMigrator(sequelize, options)
  const down = options.to === undefined ? {} : { to: options.to }
  return guard(sequelize, () => underLock(sequelize, async () => (await umzug.down(down)).map((m) => m.name)))
}

/** The migrations not yet applied, by name. */
export async function pendingMigrations(sequelize: Sequelize, options: MigrateOptions): Promise<string[]> {
  const umzug = createMigrator(sequelize, options)
  return guard(sequelize, async () => (await umzug.pending()).map((m) => m.name))
}

/** The start-up check when `store.migrateOnStart` is false: throws ACK_ERR_STORE_NOT_MIGRATED if any is pending. */
export async function assertMigrated(sequelize: Sequelize, options: MigrateOptions): Promise<void> {
  const pending = await pendingMigrations(sequelize, options)
  if (pending.length === 0) return
  const { database, host, port } = sequelize.config
  throw new StoreError(
    'ACK_ERR_STORE_NOT_MIGRATED',
    `Database "${database}" on ${host}:${port} lacks ${pending.length} migration(s): ${pending.join(', ')}. ` +
      "Run `ackstate migrate` (the Procfile's release phase does on Heroku), or set " +
      'ACKSTATE_MIGRATE_ON_START=true (store.migrateOnStart) to apply them at start.',
  )
}

/** Maps umzug's and Sequelize's failures to coded errors that say what to do. */
async function guard<T>(sequelize: Sequelize, work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (err) {
    if (err instanceof StoreError) throw err
    const cause = (err as { cause?: unknown }).cause ?? err
    if (cause instanceof StoreError) throw cause
    const { database, host, port } = sequelize.config
    if (isConnectionFailure(cause)) {
      throw unavailable(cause, `postgres://${host}:${port}/${encodeURIComponent(database)}`)
    }
    const migration = (err as { migration?: { name?: string; direction?: string } }).migration
    const what = migration?.name
      ? `Migration ${migration.name} (${migration.direction ?? 'up'})`
      : 'Migrating'
    const reason = cause instanceof Error ? cause.message : String(cause)
    throw new StoreError(
      'ACK_ERR_STORE_MIGRATION_FAILED',
      `${what} failed on database "${database}": ${reason}. It ran in one transaction, so nothing of it ` +
        'was applied; fix what PostgreSQL reports and run `ackstate migrate` again.',
      { cause: err },
    )
  }
}
