import { parseArgs } from 'node:util'
import { BrokerError, RuntimeError, UsageError } from '../errors.js'
import { createLogger, redactUrl } from '../log.js'
import { closeRedis, connectRedis } from '../redis/connect.js'
import { redisSettingsFromEnv } from '../redis/settings.js'
import { emit, letterDetails, letterTable, resultTable, type DlqOutput } from './output.js'
import { purgeLetters } from './purge.js'
import { findDlqStreams, readDeadLetters, type DlqFilter } from './read.js'
import { recordReplays } from './recordReplays.js'
import { replayLetters } from './replay.js'

const SUBCOMMANDS = ['list', 'show', 'replay', 'purge'] as const
type Subcommand = (typeof SUBCOMMANDS)[number]

/** What `list` and `show` print unless `--limit` says otherwise; replay and purge take every match. */
const DEFAULT_LIST_LIMIT = 100

const OPTIONS = {
  stream: { type: 'string' },
  all: { type: 'boolean' },
  id: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  limit: { type: 'string' },
  json: { type: 'boolean' },
  yes: { type: 'boolean' },
  config: { type: 'string', short: 'c' },
} as const

const usage = (message: string) => new UsageError('ACK_ERR_USAGE', message)

/**
 * `ackstate dlq list|show|replay|purge`: reads `{stream}:dlq` (REDIS_URL), the source of truth.
 * `replay` also stamps `replayed_at` on the `dead_letter` rows when the store is enabled.
 * Resolves with the exit code; a problem is a coded error (one line, exit 1 in cli.ts).
 */
export async function dlqCommand(
  args: string[],
  out: DlqOutput = { stdout: process.stdout, stderr: process.stderr },
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true })
  const [sub, ...extra] = positionals
  if (!SUBCOMMANDS.includes(sub as Subcommand)) {
    throw usage(`dlq needs one of ${SUBCOMMANDS.join(', ')}, got ${sub ? `"${sub}"` : 'nothing'}.`)
  }
  if (extra.length > 0) throw usage(`dlq ${sub} takes no argument "${extra[0]}"; pass filters as --flags.`)
  const command = sub as Subcommand
  const filter = parseFilter(command, values)
  const json = values.json ?? false

  // Connection errors surface as the commands' own coded errors; the log would only repeat them.
  const target = redisSettingsFromEnv(env)
  const url = target.redisUrl
  const redis = connectRedis(target, 'dlq', createLogger('silent'))
  try {
    const streams = values.all ? await findDlqStreams(redis) : [values.stream!]
    const letters = await readDeadLetters(redis, { ...filter, streams })
    switch (command) {
      case 'list':
        emit(
          out,
          letters.map((r) => r.letter),
          json,
          letterTable,
        )
        break
      case 'show':
        if (letters.length === 0) {
          throw new RuntimeError(
            'ACK_ERR_DLQ_NOT_FOUND',
            `No dead letter with id "${filter.id}" in ${where(values)}. Run \`ackstate dlq list ` +
              `${values.all ? '--all' : `--stream ${values.stream}`}\` to see the ids (a message id or a dead-letter entry id).`,
          )
        }
        emit(
          out,
          letters.map((r) => r.letter),
          json,
          letterDetails,
        )
        break
      case 'replay': {
        const results = await replayLetters(redis, letters)
        await recordReplays(letters, results, values.config, out)
        emit(out, results, json, resultTable)
        break
      }
      case 'purge':
        emit(out, await purgeLetters(redis, letters), json, resultTable)
        break
    }
    return 0
  } catch (err) {
    if (err instanceof BrokerError && err.code === 'ACK_ERR_REDIS_UNAVAILABLE') {
      throw new BrokerError(
        err.code,
        `${err.message}. Check REDIS_URL (${redactUrl(url)}) and that Redis runs.`,
        {
          cause: err,
        },
      )
    }
    throw err
  } finally {
    await closeRedis(redis)
  }
}

type Values = {
  [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'boolean' ? boolean : string
}

function where(values: Values): string {
  return values.all ? 'any dead-letter stream' : `{${values.stream}}:dlq`
}

/** Checks the flags of one subcommand; every mistake is ACK_ERR_USAGE saying what to pass. */
export function parseFilter(command: Subcommand, values: Values): Omit<DlqFilter, 'streams'> {
  if (values.all && values.stream !== undefined)
    throw usage('dlq: pass either --stream S or --all, not both.')
  if (!values.all) {
    if (values.stream === undefined || values.stream === '')
      throw usage(`dlq ${command} needs --stream S (the stream as consumers read it), or --all.`)
    if (/[{}\s]/.test(values.stream))
      throw usage(
        `dlq: --stream "${values.stream}" must not contain braces or spaces; pass the stream's own name.`,
      )
  }
  if (values.id === '') throw usage('dlq: --id must not be empty.')
  const sinceMs = time('--since', values.since)
  const untilMs = time('--until', values.until)
  if (sinceMs !== undefined && untilMs !== undefined && sinceMs > untilMs)
    throw usage(`dlq: --since (${values.since}) is after --until (${values.until}).`)
  let limit: number | undefined
  if (values.limit !== undefined) {
    if (!/^[1-9]\d*$/.test(values.limit))
      throw usage(`dlq: --limit must be a whole number from 1, got "${values.limit}".`)
    limit = Number(values.limit)
  } else if (command === 'list' || command === 'show') limit = DEFAULT_LIST_LIMIT
  if (command === 'show' && values.id === undefined)
    throw usage(
      'dlq show needs --id ID (a message id or a dead-letter entry id; `ackstate dlq list` shows both).',
    )
  const narrowed = values.id !== undefined || sinceMs !== undefined || untilMs !== undefined
  if (command === 'purge' && !narrowed && !values.yes) {
    throw usage(
      `dlq purge would delete every dead letter of ${where(values)}. Add --yes to confirm, or narrow it ` +
        'with --id, --since or --until.',
    )
  }
  return {
    ...(values.id !== undefined ? { id: values.id } : {}),
    ...(sinceMs !== undefined ? { sinceMs } : {}),
    ...(untilMs !== undefined ? { untilMs } : {}),
    ...(limit !== undefined ? { limit } : {}),
  }
}

function time(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const ms = Date.parse(value)
  if (Number.isNaN(ms) || ms < 0)
    throw usage(`dlq: ${flag} "${value}" is not an ISO 8601 time; use e.g. 2026-01-31T12:00:00Z.`)
  return ms
}
