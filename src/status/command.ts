import { parseArgs } from 'node:util'
import { BROKER_UNAVAILABLE } from '../../machines/types.js'
import { loadConfig } from '../config.js'
import { BrokerError } from '../errors.js'
import { createLogger, redactUrl } from '../log.js'
import { connectRedis } from '../redis/connect.js'
import { classify } from '../redis/errors.js'
import { createStore } from '../store/connect.js'
import { unavailable } from '../store/errors.js'
import { buildReport } from './report.js'
import { renderTable } from './table.js'

/** A status that cannot reach Redis fails within this, instead of retrying like the daemon. */
const REDIS_TIMEOUT_MS = 5_000

/**
 * `ackstate status [--config FILE] [--json]`: what each configured consumer's stream and group look
 * like right now, read from Redis (and the backup table when the store is enabled). A table, or with
 * --json one line of JSON. Exits 0 with a report, 1 with one coded line when Redis cannot be read; a
 * store that does not answer only blanks the backup column (Redis's view is what an operator needs
 * most during an incident, and PostgreSQL may be the incident).
 */
export async function statusCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { config: { type: 'string', short: 'c' }, json: { type: 'boolean', default: false } },
    strict: true,
  })
  const config = loadConfig({ file: values.config })
  const log = createLogger('silent')
  const redis = connectRedis(config, 'status', log, {
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    connectTimeout: REDIS_TIMEOUT_MS,
    commandTimeout: REDIS_TIMEOUT_MS,
  })
  const sequelize = config.store.enabled ? createStore(config.databaseUrl, { logger: log, poolMax: 2 }) : null
  try {
    const report = await buildReport(
      config,
      redis,
      sequelize && {
        sequelize,
        describeError: (err) => `ACK_ERR_STORE_UNAVAILABLE: ${unavailable(err, config.databaseUrl).message}`,
      },
    ).catch((err: unknown) => {
      throw redisFailure(err, config.redisUrl)
    })
    process.stdout.write(values.json ? `${JSON.stringify(report)}\n` : renderTable(report))
    return 0
  } finally {
    redis.disconnect()
    await sequelize?.close()
  }
}

/**
 * A refused connection or a timeout is "unavailable" here (the command does not wait for a reconnect
 * like the daemon); the line names the redacted URL it tried.
 */
function redisFailure(err: unknown, url: string): BrokerError {
  const classified = classify(err, `Reading the streams from ${redactUrl(url)}`)
  const down =
    classified.code === BROKER_UNAVAILABLE ||
    /timed out|ECONNREFUSED|Connection is closed/i.test(classified.message)
  if (!down) return classified
  return new BrokerError(BROKER_UNAVAILABLE, `${classified.message}. Check REDIS_URL and that Redis runs.`, {
    cause: err,
  })
}
