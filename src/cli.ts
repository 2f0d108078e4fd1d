#!/usr/bin/env node
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { destination } from 'pino'
import { RuntimeError, UsageError } from './errors.js'
import { runDaemon } from './daemon.js'
import { createLogger } from './log.js'
import { createPublisher } from './publish.js'
import { RECOVER_HELP, recoverCommand } from './recovery/command.js'
import { RELOAD_HELP, reloadCommand } from './reloadCommand.js'
import { loadStoreSettings, openStore, runMigrations } from './store/index.js'

const HELP = `ackstate — a Redis Streams worker runtime that never loses a message

Usage:
  ackstate start [--config FILE]        run the daemon (FILE defaults to $ACKSTATE_CONFIG)
  ackstate publish --stream S --payload JSON [--id ID] [--header k=v]... [--field k=v]...
                 [--delay MS | --deliver-at ISO-TIME]
                                        publish one message (REDIS_URL, default redis://127.0.0.1:6379)
  ackstate visualize [--machine NAME] [--format svg|mermaid|dot|json] [--out FILE]
                                        draw the state machines from their definitions (all of them
                                        unless --machine); format from FILE's extension, else mermaid
  ackstate migrate [--config FILE]      apply pending PostgreSQL migrations (DATABASE_URL; no config needed)
  ackstate dlq list|show|replay|purge (--stream S | --all) [--id ID] [--since T] [--until T]
               [--limit N] [--json] [--yes] [--config FILE]
                                        dead letters in {S}:dlq: list them, show them whole, replay them
                                        to S with a fresh attempt count, or delete them (purge needs
                                        --yes or a filter); a table on a terminal, JSON when piped
  ackstate status [--config FILE] [--json]
                                        per consumer: stream length, lag, pending, oldest pending age,
                                        dead letters, the group's consumers, backup rows pending
${RECOVER_HELP}
${RELOAD_HELP}
  ackstate help                         this text
  ackstate --version

Environment (overrides the config file):
  REDIS_URL   DATABASE_URL   PORT   LOG_LEVEL   SHUTDOWN_TIMEOUT_MS   ACKSTATE_CONFIG   ACKSTATE_PID_FILE
  ACKSTATE_STORE_ENABLED   ACKSTATE_MIGRATE_ON_START   ACKSTATE_DEBUG (the /debug page, with PORT)

Signals (start):
  SIGTERM, SIGINT   stop reading, finish and ack in-flight messages, exit 0 within shutdown.timeoutMs
  SIGHUP            re-read the config and apply it without a restart (invalid: refused, logged)
  SIGUSR2           log every actor's current state
`

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
  return pkg.version
}

function pairs(values: string[] | undefined, flag: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const v of values ?? []) {
    const i = v.indexOf('=')
    if (i <= 0) throw new UsageError('ACK_ERR_USAGE', `${flag} "${v}" must look like key=value.`)
    out[v.slice(0, i)] = v.slice(i + 1)
  }
  return out
}

async function publishCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      stream: { type: 'string' },
      payload: { type: 'string' },
      id: { type: 'string' },
      header: { type: 'string', multiple: true },
      field: { type: 'string', multiple: true },
      delay: { type: 'string' },
      'deliver-at': { type: 'string' },
    },
    strict: true,
  })
  const delayMs = values.delay === undefined ? undefined : Number(values.delay)
  if (values.delay !== undefined && (values.delay.trim() === '' || !Number.isFinite(delayMs))) {
    throw new UsageError(
      'ACK_ERR_USAGE',
      `--delay "${values.delay}" must be a number of ms, e.g. --delay 60000.`,
    )
  }
  if (!values.stream) throw new UsageError('ACK_ERR_USAGE', 'publish needs --stream NAME.')
  if (values.payload === undefined)
    throw new UsageError('ACK_ERR_USAGE', 'publish needs --payload TEXT (JSON by convention).')
  // With the store on (DATABASE_URL), the message is backed up before it is sent, as from the API.
  // No heartbeat: should this process die before its XADD, the republisher re-sends the row.
  const settings = loadStoreSettings()
  const log = createLogger(settings.logLevel === 'info' ? 'warn' : settings.logLevel)
  const store = await openStore(settings, log)
  const publisher = createPublisher({ redisUrl: process.env.REDIS_URL, store, heartbeat: false, logger: log })
  try {
    const result = await publisher.publish(
      {
        stream: values.stream,
        payload: values.payload,
        ...(values.id ? { id: values.id } : {}),
        headers: pairs(values.header, '--header'),
        fields: pairs(values.field, '--field'),
      },
      { delayMs, deliverAt: values['deliver-at'] },
    )
    process.stdout.write(`${JSON.stringify(result)}\n`)
    return 0
  } finally {
    await publisher.close()
    await store?.close()
  }
}

/** `migrate`: logs go to stdout as JSON lines, then one result line `{"database":…,"applied":[…]}`. */
async function migrateCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { config: { type: 'string', short: 'c' } },
    strict: true,
  })
  const settings = loadStoreSettings({ file: values.config })
  // Synchronous logs for this short command: the result line then comes last, after the migrations'
  // log lines (pino's default stdout stream writes asynchronously and could overtake it).
  const log = createLogger(settings.logLevel, destination({ dest: 1, sync: true }))
  const result = await runMigrations(settings, log)
  process.stdout.write(`${JSON.stringify(result)}\n`)
  return 0
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  switch (command) {
    case 'start': {
      const { values } = parseArgs({
        args: rest,
        options: { config: { type: 'string', short: 'c' } },
        strict: true,
      })
      return runDaemon({ configFile: values.config })
    }
    case 'publish':
      return publishCommand(rest)
    case 'visualize': {
      // Loaded on demand: `start` never needs the diagram code.
      const { visualizeCommand } = await import('./visualize/command.js')
      return visualizeCommand(rest)
    }
    case 'recover':
      return recoverCommand(rest)
    case 'reload':
      return reloadCommand(rest)
    case 'migrate':
      return migrateCommand(rest)
    case 'dlq': {
      const { dlqCommand } = await import('./dlq/command.js')
      return dlqCommand(rest)
    }
    case 'status': {
      const { statusCommand } = await import('./status/command.js')
      return statusCommand(rest)
    }
    case '--version':
    case '-v':
      process.stdout.write(`${version()}\n`)
      return 0
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(HELP)
      return 0
    default:
      throw new UsageError(
        'ACK_ERR_USAGE',
        `Unknown command "${command}". Run \`ackstate help\` for the commands.`,
      )
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof RuntimeError) {
      process.stderr.write(`ackstate: ${err.code}: ${err.message}\n`)
    } else if (err instanceof Error && (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`ackstate: ACK_ERR_USAGE: ${err.message}. Run \`ackstate help\`.\n`)
    } else {
      process.stderr.write(
        `ackstate: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      )
    }
    process.exit(1)
  },
)
