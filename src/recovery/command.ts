import { parseArgs } from 'node:util'
import { QueryTypes } from 'sequelize'
import { loadConfig } from '../config.js'
import { UsageError } from '../errors.js'
import { createLogger } from '../log.js'
import { closeRedis, connectRedis } from '../redis/connect.js'
import { redisSettingsFromEnv } from '../redis/settings.js'
import { loadStoreSettings, openStore } from '../store/index.js'
import { recoverStream, type RecoverResult } from './recoverStream.js'

export const RECOVER_HELP = `  ackstate recover [--stream S]... [--since ISO-TIME] [--dry-run] [--json] [--config FILE]
                                        after Redis lost data: re-send every backed-up message that is
                                        not acked and no longer in its stream (all streams by default);
                                        with a config, missing consumer groups are created first`

/**
 * `ackstate recover`: the recovery procedure of seed 000 as a command. Groups of the configured
 * consumers are recreated first (from 0, so the re-sent entries are consumed), then each stream's
 * backup is diffed against it. A progress line on a terminal, a summary at the end.
 */
export async function recoverCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      stream: { type: 'string', multiple: true },
      since: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      config: { type: 'string', short: 'c' },
    },
    strict: true,
  })
  const since = values.since === undefined ? undefined : new Date(values.since)
  if (since && !Number.isFinite(since.getTime())) {
    throw new UsageError(
      'ACK_ERR_USAGE',
      `--since "${values.since}" is not a time; use ISO 8601, e.g. 2026-11-21T10:00:00Z.`,
    )
  }
  const configFile = values.config ?? process.env.ACKSTATE_CONFIG
  const config = configFile ? loadConfig({ file: configFile }) : undefined
  const settings = config ?? loadStoreSettings()
  if (!settings.store.enabled) {
    throw new UsageError(
      'ACK_ERR_USAGE',
      'recover needs the store (the backup lives in PostgreSQL); it is disabled.',
    )
  }
  const log = createLogger('warn')
  const store = (await openStore(settings, log))!
  const redis = connectRedis(config ?? redisSettingsFromEnv(process.env), 'recover', log, {
    maxRetriesPerRequest: 5,
  })
  try {
    const streams = values.stream ?? (await streamsWithUnacked(store))
    if (config && !values['dry-run']) {
      for (const c of config.consumers.filter((c) => streams.includes(c.stream))) {
        await redis.xgroup('CREATE', c.stream, c.group, '0', 'MKSTREAM').catch((err: Error) => {
          if (!err.message.startsWith('BUSYGROUP')) throw err
        })
      }
    }
    const results: RecoverResult[] = []
    const tty = process.stderr.isTTY && !values.json
    for (const stream of streams) {
      const result = await recoverStream(redis, store, stream, {
        ...(since ? { since } : {}),
        dryRun: values['dry-run'],
        progress: tty
          ? (checked, total, resent) =>
              process.stderr.write(`\r${stream}: ${checked}/${total} checked, ${resent} re-sent`)
          : undefined,
      })
      if (tty) process.stderr.write('\n')
      results.push(result)
    }
    printSummary(results, values.json, values['dry-run'])
    return 0
  } finally {
    await closeRedis(redis)
    await store.close()
  }
}

async function streamsWithUnacked(store: import('sequelize').Sequelize): Promise<string[]> {
  const rows = await store.query<{ stream: string }>(
    `SELECT DISTINCT stream FROM redis_message_backup WHERE status IN ('pending', 'sent') ORDER BY stream`,
    { type: QueryTypes.SELECT },
  )
  return rows.map((r) => r.stream)
}

function printSummary(results: RecoverResult[], json: boolean, dryRun: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify({ dryRun, streams: results })}\n`)
    return
  }
  if (results.length === 0) {
    process.stdout.write('nothing to recover: every backed-up message is acked or dead-lettered\n')
    return
  }
  const verb = dryRun ? 'would re-send' : 're-sent'
  for (const r of results) {
    const note = r.ran ? '' : ' (skipped: another recovery of this stream is running)'
    process.stdout.write(
      `${r.stream}: ${r.checked} unacked in the backup, ${r.missing} missing from the stream, ${verb} ${dryRun ? r.missing : r.resent}${note}\n`,
    )
  }
}
