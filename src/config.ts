import { readFileSync } from 'node:fs'
import path from 'node:path'
import convict from 'convict'
import { ConfigError } from './errors.js'
import { LOG_LEVELS, type LogLevel } from './log.js'
import { checkConsumers, type ConsumerConfig } from './consumerConfig.js'
import { checkRedisTopology, redisSchema, type RedisMode, type RedisTopology } from './redisConfig.js'
import { checkKeySlots } from './redis/slotCheck.js'

export type { ConsumerConfig }

/** The validated configuration, as plain data. */
export interface Config {
  /** Absolute path of the file it came from. */
  file: string
  redisUrl: string
  /** Standalone (redisUrl), Sentinel or Cluster; redisUrl still gives credentials, database and TLS. */
  redis: RedisTopology
  databaseUrl: string
  port: number | null
  logLevel: LogLevel
  shutdown: { timeoutMs: number }
  supervisor: { maxRestarts: number; restartWindowMs: number }
  reclaim: { intervalMs: number; heartbeatTtlMs: number }
  republish: { intervalMs: number; batchSize: number; afterMs: number; staleAfterMs: number }
  delay: { batchSize: number; maxIdleMs: number }
  recovery: { auto: boolean }
  trim: { intervalMs: number; maxLength: number }
  retention: { ackedMs: number; deliveredMs: number; intervalMs: number; batchSize: number }
  store: StoreConfig
  /** The live debug page at /debug (needs `port`). */
  debug: { enabled: boolean }
  /** V8 heap sizing of the whole process (src/memory.ts). */
  memory: { heapGrowingPercent: number }
  consumers: ConsumerConfig[]
}

/** PostgreSQL (databaseUrl): the message backup, delayed messages and dead letters. */
export interface StoreConfig {
  /** false: run on Redis alone; `ackstate migrate` then does nothing. */
  enabled: boolean
  /** Apply pending migrations at start; false: refuse to start until `ackstate migrate` ran. */
  migrateOnStart: boolean
}

/** Heroku kills a dyno 30 s after SIGTERM; the drain must finish before that. */
export const SHUTDOWN_LIMIT_MS = 30_000

function urlFormat(name: string, protocols: string[], example: string) {
  return {
    name,
    validate(value: unknown) {
      if (typeof value !== 'string' || value.trim() === '') {
        throw new Error(`must be set, e.g. ${example}`)
      }
      let url: URL
      try {
        url = new URL(value)
      } catch {
        throw new Error(`is not a URL. Use ${example}`)
      }
      if (!protocols.includes(url.protocol)) {
        throw new Error(`has protocol "${url.protocol}", expected ${protocols.join(' or ')}. Use ${example}`)
      }
      if (url.hostname === '') throw new Error(`has no host. Use ${example}`)
    },
  }
}

convict.addFormat(urlFormat('redis-url', ['redis:', 'rediss:'], 'redis://127.0.0.1:6379 (rediss:// for TLS)'))
convict.addFormat(
  urlFormat('postgres-url', ['postgres:', 'postgresql:'], 'postgres://user@127.0.0.1:5432/db'),
)
convict.addFormat({
  name: 'optional-port',
  validate(value: unknown) {
    if (value === null) return
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 65535) {
      throw new Error('must be a port number from 0 to 65535, or null to run without the HTTP server')
    }
  },
  coerce: (v: string) => (v === '' ? null : Number(v)),
})
convict.addFormat({
  name: 'shutdown-timeout',
  validate(value: unknown) {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1000 || value >= SHUTDOWN_LIMIT_MS) {
      throw new Error(
        `must be a whole number of ms from 1000 to ${SHUTDOWN_LIMIT_MS - 1}: the platform kills the process ` +
          `${SHUTDOWN_LIMIT_MS / 1000} s after SIGTERM, so the drain must end before that`,
      )
    }
  },
  coerce: (v: string) => Number(v),
})
convict.addFormat({
  name: 'positive-int',
  validate(value: unknown) {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
      throw new Error('must be a whole number of ms, at least 1')
    }
  },
  coerce: (v: string) => Number(v),
})
// convict's built-in boolean turns every string but "false" into true ("0", "no", a typo); accept only
// the spellings an operator means and reject the rest.
const FLAGS: Record<string, boolean> = { true: true, false: false, '1': true, '0': false }
convict.addFormat({
  name: 'flag',
  validate(value: unknown) {
    if (typeof value !== 'boolean') throw new Error('must be true or false')
  },
  coerce: (v: string) => FLAGS[v.trim().toLowerCase()] ?? v,
})
/** V8's own growing factor tops out at 4, i.e. 300 %. */
const HEAP_GROWING_PERCENT_MAX = 300
convict.addFormat({
  name: 'heap-growing-percent',
  validate(value: unknown) {
    if (
      typeof value !== 'number' ||
      !Number.isInteger(value) ||
      value < 0 ||
      value > HEAP_GROWING_PERCENT_MAX
    ) {
      throw new Error(
        `must be a whole number from 0 to ${HEAP_GROWING_PERCENT_MAX}: how far (in %) the heap may grow past ` +
          'what survived the last full GC; 0 leaves it to V8',
      )
    }
  },
})
convict.addFormat({
  name: 'consumers',
  validate(value: unknown) {
    if (!Array.isArray(value)) throw new Error('must be a list of consumers')
  },
})

export const schema = {
  redisUrl: {
    doc: 'Redis URL (set by Heroku Redis). redis://[user:password@]host:port[/db], rediss:// for TLS.',
    format: 'redis-url',
    default: 'redis://127.0.0.1:6379',
    env: 'REDIS_URL',
    sensitive: true,
  },
  redis: redisSchema,
  databaseUrl: {
    doc: 'PostgreSQL URL (set by Heroku Postgres), for the message backup.',
    format: 'postgres-url',
    default: 'postgres://postgres@127.0.0.1:5432/ackstate',
    env: 'DATABASE_URL',
    sensitive: true,
  },
  port: {
    doc: 'Port of the health HTTP server (/healthz, /readyz); null runs without it.',
    format: 'optional-port',
    default: null as number | null,
    env: 'PORT',
  },
  logLevel: {
    doc: 'Log level of the JSON logs on stdout.',
    format: [...LOG_LEVELS],
    default: 'info',
    env: 'LOG_LEVEL',
  },
  shutdown: {
    timeoutMs: {
      doc: 'On SIGTERM/SIGINT, time allowed to finish in-flight handlers, ack them and exit (below 30000).',
      format: 'shutdown-timeout',
      default: 25_000,
      env: 'SHUTDOWN_TIMEOUT_MS',
    },
  },
  supervisor: {
    maxRestarts: {
      doc: 'Restarts of a crashed actor allowed within supervisor.restartWindowMs; one more crash in that window stops the daemon with exit code 1.',
      format: 'nat',
      default: 5,
    },
    restartWindowMs: {
      doc: 'How long a restart counts against supervisor.maxRestarts, in ms (default 10 minutes): an actor that crashes now and then is always restarted, a crash loop stops the daemon.',
      format: 'positive-int',
      default: 600_000,
    },
  },
  retention: {
    ackedMs: {
      doc: 'Acked and dead-lettered backup rows are deleted once this old, in ms (default 7 days).',
      format: 'positive-int',
      default: 7 * 24 * 3600 * 1000,
    },
    deliveredMs: {
      doc: 'Delivered delay rows are deleted once this old, in ms (default 7 days).',
      format: 'positive-int',
      default: 7 * 24 * 3600 * 1000,
    },
    intervalMs: {
      doc: 'How often the retention pass runs, in ms.',
      format: 'positive-int',
      default: 600_000,
    },
    batchSize: {
      doc: 'Rows deleted per statement by the retention pass.',
      format: 'positive-int',
      default: 5_000,
    },
  },
  trim: {
    intervalMs: {
      doc: 'How often each consumed stream is trimmed below the oldest entry any group still needs, in ms.',
      format: 'positive-int',
      default: 60_000,
    },
    maxLength: {
      doc: 'Safety valve: a stream longer than this after the safe trim is cut to it, unconsumed entries included (logged as an error; recover them with `ackstate recover`). 0: never.',
      format: 'nat',
      default: 0,
    },
  },
  recovery: {
    auto: {
      doc: 'When a consumer finds its stream or group gone (Redis lost data), re-send from the backup what the stream no longer holds (store on).',
      format: 'flag',
      default: true,
      env: 'ACKSTATE_RECOVERY_AUTO',
    },
  },
  delay: {
    batchSize: {
      doc: 'Due delayed messages released per pass of the delay scheduler (store on).',
      format: 'positive-int',
      default: 500,
    },
    maxIdleMs: {
      doc: 'Longest sleep of the delay scheduler, a safety net should a LISTEN/NOTIFY wake-up be lost, in ms.',
      format: 'positive-int',
      default: 5_000,
    },
  },
  republish: {
    intervalMs: {
      doc: 'How often backup rows that never reached Redis are looked for (store on), in ms.',
      format: 'positive-int',
      default: 1_000,
    },
    batchSize: {
      doc: 'Backup rows re-sent per pass.',
      format: 'positive-int',
      default: 500,
    },
    afterMs: {
      doc: 'A pending backup row whose publisher is gone (no heartbeat) or gave it up is re-sent once it is this old, in ms.',
      format: 'positive-int',
      default: 5_000,
    },
    staleAfterMs: {
      doc: "A backup row still pending this long is looked up in its stream whoever owns it, and re-sent if absent (a live publisher's failed XADD it could not hand over), in ms.",
      format: 'positive-int',
      default: 600_000,
    },
  },
  reclaim: {
    intervalMs: {
      doc: 'How often pending entries are scanned for due retries and for orphans of dead daemons, in ms.',
      format: 'positive-int',
      default: 500,
    },
    heartbeatTtlMs: {
      doc: 'A daemon whose heartbeat is older than this is dead: its pending entries are reclaimed at once.',
      format: 'positive-int',
      default: 3_000,
    },
  },
  store: {
    enabled: {
      doc: 'Use PostgreSQL (databaseUrl) for the message backup, delayed messages and dead letters. false: run on Redis alone, and `ackstate migrate` does nothing.',
      format: 'flag',
      default: true,
      env: 'ACKSTATE_STORE_ENABLED',
    },
    migrateOnStart: {
      doc: 'Apply pending migrations when the daemon starts. false: start only once `ackstate migrate` ran (e.g. as the release phase), else stop with ACK_ERR_STORE_NOT_MIGRATED.',
      format: 'flag',
      default: true,
      env: 'ACKSTATE_MIGRATE_ON_START',
    },
  },
  debug: {
    enabled: {
      doc: 'Serve the live debug page at /debug on the HTTP server (needs port): every actor drawn as its chart with the current state, last transitions, counters and in-flight batches (with payload previews). Off unless set.',
      format: 'flag',
      default: false,
      env: 'ACKSTATE_DEBUG',
    },
  },
  memory: {
    heapGrowingPercent: {
      doc: 'How far (in %) V8 lets the heap grow past what survived the last full GC before collecting again; read at start, for the whole process. 0 leaves it to V8, whose factor goes up to 4× on a machine with plenty of memory.',
      format: 'heap-growing-percent',
      default: 50,
    },
  },
  consumers: {
    doc: 'The consumers to run; see the consumer keys in README.md.',
    format: 'consumers',
    default: [] as unknown[],
  },
}

export interface LoadOptions {
  /** Config file; falls back to env.ACKSTATE_CONFIG. */
  file?: string
  /** Environment to read overrides from (tests pass their own; never mutate process.env). */
  env?: NodeJS.ProcessEnv
}

/**
 * Reads, validates and resolves the configuration. Nothing connects before this returns; every
 * problem is a ConfigError naming the key or file, what is wrong and what to do.
 */
export function loadConfig({ file, env = process.env }: LoadOptions = {}): Config {
  const chosen = file ?? env.ACKSTATE_CONFIG
  if (!chosen) {
    throw new ConfigError(
      'ACK_ERR_CONFIG',
      'No config file given. Pass --config FILE or set ACKSTATE_CONFIG (see config/example.json).',
    )
  }
  const absolute = path.resolve(chosen)
  const raw = readConfigFile(absolute)

  const conf = convict(schema, { env, args: [] })
  try {
    conf.load(raw)
    conf.validate({ allowed: 'strict' })
  } catch (err) {
    throw new ConfigError('ACK_ERR_CONFIG', `Invalid config in ${absolute}: ${describeConfigError(err)}`, {
      cause: err,
    })
  }

  if (conf.get('reclaim.heartbeatTtlMs') < 2 * conf.get('reclaim.intervalMs')) {
    throw new ConfigError(
      'ACK_ERR_CONFIG',
      `Invalid config in ${absolute}: reclaim.heartbeatTtlMs (${conf.get('reclaim.heartbeatTtlMs')}) must be at ` +
        `least twice reclaim.intervalMs (${conf.get('reclaim.intervalMs')}), or one late heartbeat makes a live ` +
        'daemon look dead. Raise the TTL or shorten the interval.',
    )
  }
  const redis: RedisTopology = { ...conf.get('redis'), mode: conf.get('redis.mode') as RedisMode }
  try {
    checkRedisTopology(redis, conf.get('redisUrl'))
  } catch (err) {
    throw new ConfigError('ACK_ERR_CONFIG', `Invalid config in ${absolute}: ${(err as Error).message}.`)
  }
  const consumers = checkConsumers(conf.get('consumers'), path.dirname(absolute), absolute)
  // On a Cluster a multi-key command must stay in one slot; refuse a layout that would not.
  checkKeySlots(consumers, absolute)
  return {
    file: absolute,
    redisUrl: conf.get('redisUrl'),
    redis,
    databaseUrl: conf.get('databaseUrl'),
    port: conf.get('port'),
    logLevel: conf.get('logLevel') as LogLevel,
    shutdown: { timeoutMs: conf.get('shutdown.timeoutMs') },
    supervisor: {
      maxRestarts: conf.get('supervisor.maxRestarts'),
      restartWindowMs: conf.get('supervisor.restartWindowMs'),
    },
    reclaim: {
      intervalMs: conf.get('reclaim.intervalMs'),
      heartbeatTtlMs: conf.get('reclaim.heartbeatTtlMs'),
    },
    delay: { batchSize: conf.get('delay.batchSize'), maxIdleMs: conf.get('delay.maxIdleMs') },
    recovery: { auto: conf.get('recovery.auto') },
    trim: { intervalMs: conf.get('trim.intervalMs'), maxLength: conf.get('trim.maxLength') },
    retention: {
      ackedMs: conf.get('retention.ackedMs'),
      deliveredMs: conf.get('retention.deliveredMs'),
      intervalMs: conf.get('retention.intervalMs'),
      batchSize: conf.get('retention.batchSize'),
    },
    republish: {
      intervalMs: conf.get('republish.intervalMs'),
      batchSize: conf.get('republish.batchSize'),
      afterMs: conf.get('republish.afterMs'),
      staleAfterMs: conf.get('republish.staleAfterMs'),
    },
    store: { enabled: conf.get('store.enabled'), migrateOnStart: conf.get('store.migrateOnStart') },
    debug: { enabled: conf.get('debug.enabled') },
    memory: { heapGrowingPercent: conf.get('memory.heapGrowingPercent') },
    consumers,
  }
}

/** The configuration as it may be logged: URLs are replaced by "[Sensitive]". */
export function printableConfig(config: Config): Record<string, unknown> {
  const redis = { ...config.redis, sentinelPassword: config.redis.sentinelPassword && '[Sensitive]' }
  return { ...config, redisUrl: '[Sensitive]', redis, databaseUrl: '[Sensitive]' }
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new ConfigError(
      'ACK_ERR_CONFIG_FILE',
      code === 'ENOENT'
        ? `Config file ${file} does not exist. Check the path given to --config or ACKSTATE_CONFIG.`
        : `Config file ${file} cannot be read (${code ?? 'unknown error'}). Check its permissions.`,
      { cause: err },
    )
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw new ConfigError(
      'ACK_ERR_CONFIG_FILE',
      `Config file ${file} is not valid JSON: ${(err as Error).message}. Fix the syntax (no comments, no trailing commas).`,
      { cause: err },
    )
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(
      'ACK_ERR_CONFIG_FILE',
      `Config file ${file} must hold a JSON object, e.g. { "consumers": [] }.`,
    )
  }
  return parsed as Record<string, unknown>
}

/** convict joins several problems with newlines; keep them on one line for the log. */
export function describeConfigError(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err)
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) =>
      l.includes('not declared in the schema')
        ? `${l} (remove it, or check its spelling against the config reference in README.md)`
        : l,
    )
    .join('; ')
}
