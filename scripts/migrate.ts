/**
 * Development helper around the store's migrations, for what `ackstate migrate` deliberately does not
 * offer in production (reverting):
 *
 *   node --import tsx scripts/migrate.ts status              applied and pending migrations
 *   node --import tsx scripts/migrate.ts up                  apply pending (as `ackstate migrate`)
 *   node --import tsx scripts/migrate.ts down [--to NAME|0]  revert the last one, or down to NAME (0: all)
 *
 * Reads DATABASE_URL (or --config FILE) like `ackstate migrate`; a local database is created if missing.
 */
import { parseArgs } from 'node:util'
import { RuntimeError, UsageError } from '../src/errors.js'
import { createLogger } from '../src/log.js'
import {
  connectStore,
  isLocalUrl,
  loadStoreSettings,
  migrate,
  pendingMigrations,
  revert,
} from '../src/store/index.js'

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { config: { type: 'string', short: 'c' }, to: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  })
  const command = positionals[0] ?? 'status'
  if (!['status', 'up', 'down'].includes(command)) {
    throw new UsageError(
      'ACK_ERR_USAGE',
      `Unknown command "${command}": use status, up or down [--to NAME|0].`,
    )
  }
  const settings = loadStoreSettings({ file: values.config })
  const logger = createLogger(settings.logLevel)
  const sequelize = await connectStore(settings.databaseUrl, {
    logger,
    createIfMissing: isLocalUrl(settings.databaseUrl),
  })
  try {
    if (command === 'up') {
      process.stdout.write(`${JSON.stringify({ applied: await migrate(sequelize, { logger }) })}\n`)
    } else if (command === 'down') {
      const to = values.to === '0' ? 0 : values.to
      process.stdout.write(`${JSON.stringify({ reverted: await revert(sequelize, { logger, to }) })}\n`)
    } else {
      process.stdout.write(`${JSON.stringify({ pending: await pendingMigrations(sequelize, { logger }) })}\n`)
    }
  } finally {
    await sequelize.close()
  }
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (err: unknown) => {
    const line = err instanceof RuntimeError ? `${err.code}: ${err.message}` : String(err)
    process.stderr.write(`migrate: ${line}\n`)
    process.exit(1)
  },
)
