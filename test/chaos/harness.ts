import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import type { TestContext } from 'node:test'
import { Redis } from 'ioredis'
import pg from 'pg'
import { createLogger } from '../../src/log.js'
import { createPublisher, type Publisher } from '../../src/publish.js'
import { connectStore, migrate } from '../../src/store/index.js'
import { testDatabase } from '../support/postgres.js'
import {
  account,
  type Accounting,
  type FaultRecord,
  type InvocationRecord,
  type PublishOutcome,
  type PublishRecord,
} from './accounting.js'
import { prng, type Prng } from './prng.js'
import { appendJson, JsonlTail } from './records.js'
import { recordResult, type ScenarioResult } from './report.js'
import { adminRedis, OwnCluster, RedisServer, SentinelSetup, until, type Persistence } from './servers.js'
import { ROOT, settings } from './settings.js'

export { ROOT, settings, until }

const CLI = path.join(ROOT, 'src/cli.ts')
export const HANDLER = path.join(ROOT, 'test/chaos/handlers/record.mjs')
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The consumer every scenario runs: its stream, group and handler (test/chaos/handlers/record.mjs). */
export const STREAM = 'chaos'
export const GROUP = 'g'

export interface ScenarioOptions {
  family: string
  /** The CHAOS.md row. */
  fault: string
  redis?: { persistence?: Persistence; extra?: string[] }
  /** Redis through Sentinel: a master, a replica and a sentinel (mode sentinel for the daemons; the harness follows the master too). */
  sentinel?: boolean
  /**
   * Whether the harness's publisher and raw client move at once on +switch-master (true, like the
   * daemon's connections) or only when a command fails (a client of another service).
   */
  failoverDetector?: boolean
  /** A cluster the scenario created (it stops and starts it); else a database on the shared one. */
  cluster?: OwnCluster
  /** Overrides of the `chaos` consumer. */
  consumer?: Record<string, unknown>
  /** More consumers (full entries). */
  consumers?: Record<string, unknown>[]
  /** Top-level config overrides (deep for one level). */
  config?: Record<string, Record<string, unknown>>
  /** Default handler sleep per message (CHAOS_HANDLER_MS), the in-flight window. */
  handlerMs?: number
}

/** Compares two stream entry ids (`ms-seq`). */
export function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number) as [number, number]
  const [bm, bs] = b.split('-').map(Number) as [number, number]
  return am - bm || as - bs
}

/** A dead letter as read from `{stream}:dlq`. */
export interface Letter {
  id: string
  at: number
  code: string
  attempts: number
}

export interface FinishOptions {
  /** A raw XADD (no backup) may be lost to this fault (Redis data loss): reported, not failed. */
  allowUnbackedLoss?: boolean
  /** Dead letters are expected (handler faults, bad inputs). */
  expectDeadLetters?: boolean
  notes?: string[]
  /** Give up waiting for the drain after this long (the accounting then shows what is missing). */
  drainMs?: number
  /** A known defect this scenario shows (its test is a todo): marked so in CHAOS.md. */
  todo?: string
}

/** One daemon child process (`ackstate start`), its parsed log lines and its exit. */
export class Daemon {
  readonly logs: Record<string, unknown>[] = []
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>
  private stderrText = ''
  private waiters: {
    match: (l: Record<string, unknown>) => boolean
    resolve: (l: Record<string, unknown>) => void
  }[] = []

  constructor(
    readonly child: ChildProcess,
    readonly logFile: string,
  ) {
    const file = createWriteStream(logFile, { flags: 'a' })
    let buffer = ''
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      file.write(chunk)
      buffer += chunk
      let nl: number
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl)
        buffer = buffer.slice(nl + 1)
        let parsed: Record<string, unknown>
        try {
          parsed = JSON.parse(line) as Record<string, unknown>
        } catch {
          parsed = { raw: line }
        }
        this.logs.push(parsed)
        for (const w of [...this.waiters]) {
          if (w.match(parsed)) {
            this.waiters.splice(this.waiters.indexOf(w), 1)
            w.resolve(parsed)
          }
        }
      }
    })
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderrText += chunk
      file.write(`[stderr] ${chunk}`)
    })
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        file.end()
        resolve({ code, signal, at: Date.now() })
      }),
    )
  }

  get pid(): number {
    return this.child.pid!
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  stderr(): string {
    return this.stderrText
  }

  /** Signals this child, by its pid, if it still runs. */
  signal(signal: NodeJS.Signals): void {
    if (this.alive) this.child.kill(signal)
  }

  async kill9(): Promise<number> {
    this.signal('SIGCONT')
    this.signal('SIGKILL')
    await this.exited
    return Date.now()
  }

  waitForLog(
    match: (l: Record<string, unknown>) => boolean,
    timeoutMs = 30_000,
  ): Promise<Record<string, unknown>> {
    const found = this.logs.find(match)
    if (found) return Promise.resolve(found)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new Error(
            `daemon ${this.pid}: no matching log line within ${timeoutMs} ms; stderr: ${this.stderrText.slice(-2000)}; last logs: ${JSON.stringify(this.logs.slice(-5))}`,
          ),
        )
      }, timeoutMs)
      this.waiters.push({
        match,
        resolve: (l) => {
          clearTimeout(timer)
          resolve(l)
        },
      })
    })
  }
}

/** Spawns `ackstate start --config FILE` from source; killed (by pid) when the test ends. */
export function spawnDaemon(
  t: TestContext,
  configFile: string,
  env: Record<string, string>,
  logFile: string,
): Daemon {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'start', '--config', configFile], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, ...(process.env.HOME ? { HOME: process.env.HOME } : {}), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const daemon = new Daemon(child, logFile)
  t.after(() => daemon.kill9())
  return daemon
}

const silent = createLogger('silent')

/** With CHAOS_DEBUG set, a timestamped line on stderr per step of a scenario. */
export function trace(message: string): void {
  if (process.env.CHAOS_DEBUG) process.stderr.write(`[chaos ${new Date().toISOString()}] ${message}\n`)
}

/**
 * A connection to whatever master the sentinel names, made like src/redis/connect.ts makes the
 * daemon's (ioredis's failover detector moves it at once on +switch-master), and like the daemon's
 * resources replaced by the Scenario once ioredis ended it (that detector leaves some clients closed
 * for good after a master was killed). One that still lands on a master about to be demoted
 * reconnects on READONLY.
 */
function sentinelClient(setup: SentinelSetup, failoverDetector = true): Redis {
  const redis = new Redis({
    sentinels: [setup.sentinelAddress],
    name: SentinelSetup.MASTER_NAME,
    failoverDetector,
    maxRetriesPerRequest: 2,
    retryStrategy: (n) => Math.min(n * 100, 2_000),
    reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 2 : false),
  })
  redis.on('error', () => {})
  return redis
}

/**
 * One scenario: its own redis-server, its own database, daemon child processes, a recording
 * publisher, the faults it injected, and at the end the accounting (accounting.ts) written to the
 * results file and asserted: nothing lost, nothing unexpected, no duplicate effect, still consuming.
 */
export class Scenario {
  readonly rng: Prng
  readonly daemons: Daemon[] = []
  readonly faults: FaultRecord[] = []
  readonly notes: string[] = []
  readonly publishesFile: string
  readonly invocationsFile: string
  private readonly publishTail: JsonlTail<PublishRecord>
  private readonly invocationTail: JsonlTail<InvocationRecord>
  private counter = 0
  private daemonCount = 0
  private readonly startedAt = Date.now()
  private traffic: Traffic | null = null
  private readonly letters = new Map<string, { last: string; entries: Letter[] }>()
  readonly streams: string[]

  private constructor(
    readonly t: TestContext,
    readonly options: ScenarioOptions,
    readonly dir: string,
    readonly redis: RedisServer,
    private adminClient: Redis,
    readonly dbUrl: string,
    private publisherClient: Publisher,
    readonly configFile: string,
    readonly config: Record<string, unknown>,
    /** The master, replica and sentinel, in a Sentinel scenario. */
    readonly sentinel?: SentinelSetup,
  ) {
    this.rng = prng(settings.seed).fork(options.fault)
    this.publishesFile = path.join(dir, 'publishes.jsonl')
    this.invocationsFile = path.join(dir, 'invocations.jsonl')
    this.publishTail = new JsonlTail(this.publishesFile)
    this.invocationTail = new JsonlTail(this.invocationsFile)
    this.streams = (config.consumers as { stream: string }[]).map((c) => c.stream)
  }

  /** The publisher's own Sentinel connection, in a Sentinel scenario. */
  publisherRedis: Redis | undefined
  /** Every connection the harness opened, disconnected at the end. */
  clients: Redis[] = []

  /** The harness's own connection to the scenario's Redis (admin commands, raw XADD). */
  get admin(): Redis {
    if (this.sentinel && this.adminClient.status === 'end') {
      this.adminClient = sentinelClient(this.sentinel, this.options.failoverDetector)
      this.clients.push(this.adminClient)
    }
    return this.adminClient
  }

  /** The recording publisher's Publisher (the API, with the backup). */
  get publisher(): Publisher {
    if (this.sentinel && this.publisherRedis?.status === 'end') {
      void this.publisherClient.close().catch(() => {})
      this.publisherRedis = sentinelClient(this.sentinel, this.options.failoverDetector)
      this.clients.push(this.publisherRedis)
      this.publisherClient = createPublisher({
        redis: this.publisherRedis,
        databaseUrl: this.dbUrl,
        logger: silent,
      })
    }
    return this.publisherClient
  }

  static async open(t: TestContext, options: ScenarioOptions): Promise<Scenario> {
    const slug = options.fault
      .replace(/[^A-Za-z0-9]+/g, '-')
      .replace(/^-|-$/g, '')
      .toLowerCase()
    const dir = path.join(settings.out, `${slug}-${randomBytes(3).toString('hex')}`)
    mkdirSync(dir, { recursive: true })
    // t.after hooks run in the order they were registered: this first one stops the daemons and
    // the publisher before the servers and the database they use go away.
    const holder: { scenario?: Scenario; clients: Redis[] } = { clients: [] }
    t.after(async () => {
      const s = holder.scenario
      if (s) {
        await s.stopTraffic()
        await Promise.all(s.daemons.map((d) => d.kill9()))
        await s.publisher.close().catch(() => {})
      }
      for (const c of holder.clients) c.disconnect()
    })
    let redis: RedisServer
    let admin: Redis
    let publisherRedis: Redis | undefined
    let sentinel: SentinelSetup | undefined
    if (options.sentinel) {
      // Through the sentinel, like the daemon: both follow the master across a failover.
      sentinel = await SentinelSetup.open(t)
      redis = sentinel.servers[0]
      admin = sentinelClient(sentinel, options.failoverDetector)
      publisherRedis = sentinelClient(sentinel, options.failoverDetector)
    } else {
      redis = await RedisServer.open(t, options.redis)
      admin = adminRedis(redis.port)
    }
    holder.clients = [admin, ...(publisherRedis ? [publisherRedis] : [])]

    let dbUrl: string
    if (options.cluster) {
      const client = new pg.Client({ connectionString: options.cluster.adminUrl })
      await client.connect()
      await client.query('CREATE DATABASE chaos')
      await client.end()
      dbUrl = options.cluster.urlFor('chaos')
    } else {
      dbUrl = (await testDatabase(t)).url
    }
    const sequelize = await connectStore(dbUrl, { logger: silent, createIfMissing: false })
    try {
      await migrate(sequelize, { logger: silent })
      await sequelize.query(
        'CREATE TABLE chaos_effect (message_id text NOT NULL, pid integer, attempt integer, at timestamptz DEFAULT now())',
      )
    } finally {
      await sequelize.close()
    }
    const publisher = createPublisher({
      ...(publisherRedis ? { redis: publisherRedis } : { redisUrl: redis.url }),
      databaseUrl: dbUrl,
      logger: silent,
    })

    const config = {
      logLevel: 'info',
      shutdown: { timeoutMs: 5_000 },
      reclaim: { intervalMs: 250, heartbeatTtlMs: 1_000 },
      republish: { intervalMs: 250, afterMs: 500 },
      ...(sentinel
        ? {
            redis: {
              mode: 'sentinel',
              sentinels: [`127.0.0.1:${sentinel.sentinel.port}`],
              masterName: SentinelSetup.MASTER_NAME,
              timeoutMs: 1_500,
            },
          }
        : {}),
      ...options.config,
      consumers: [
        {
          name: 'chaos',
          stream: STREAM,
          group: GROUP,
          handler: HANDLER,
          concurrency: 2,
          batchSize: 10,
          blockMs: 500,
          handlerTimeoutMs: 2_000,
          maxMemoryMb: 64,
          maxAttempts: 30,
          retryBaseMs: 100,
          retryMaxMs: 1_000,
          ...options.consumer,
        },
        ...(options.consumers ?? []),
      ],
    }
    const configFile = path.join(dir, 'config.json')
    writeFileSync(configFile, JSON.stringify(config, null, 2))
    const scenario = new Scenario(
      t,
      options,
      dir,
      redis,
      admin,
      dbUrl,
      publisher,
      configFile,
      config,
      sentinel,
    )
    scenario.publisherRedis = publisherRedis
    scenario.clients = holder.clients
    holder.scenario = scenario
    return scenario
  }

  /** Environment of a daemon of this scenario. */
  daemonEnv(extra: Record<string, string> = {}): Record<string, string> {
    return {
      REDIS_URL: this.redis.url,
      DATABASE_URL: this.dbUrl,
      CHAOS_LOG: this.invocationsFile,
      CHAOS_HANDLER_MS: String(this.options.handlerMs ?? 2),
      ...extra,
    }
  }

  /** Starts a daemon; resolves once it is connected (its consumers then read at once). */
  async startDaemon({ env = {}, configFile = this.configFile, wait = true } = {}): Promise<Daemon> {
    const n = ++this.daemonCount
    const daemon = spawnDaemon(
      this.t,
      configFile,
      this.daemonEnv(env),
      path.join(this.dir, `daemon-${n}.log`),
    )
    this.daemons.push(daemon)
    if (wait) await daemon.waitForLog((l) => l.msg === 'connected to redis')
    return daemon
  }

  live(): Daemon[] {
    return this.daemons.filter((d) => d.alive)
  }

  /** Records a fault: when it was injected and when it was healed. */
  fault(kind: string, at: number, healedAt = at, note?: string): void {
    this.faults.push({ kind, at, healedAt, ...(note ? { note } : {}) })
  }

  nextId(prefix: string): string {
    return `${prefix}-${String(++this.counter).padStart(6, '0')}`
  }

  private record(p: PublishRecord): void {
    appendJson(this.publishesFile, p)
  }

  /** Publishes through the API (backup first), recording each message's outcome. */
  async publishApi(
    messages: { id?: string; fields?: Record<string, string>; payload?: string; stream?: string }[],
    { probe = false } = {},
  ): Promise<PublishOutcome> {
    const batch = messages.map((m) => ({
      stream: m.stream ?? STREAM,
      id: m.id ?? this.nextId('api'),
      payload: m.payload ?? `{"n":${this.counter}}`,
      fields: m.fields ?? {},
    }))
    const t0 = Date.now()
    let outcome: PublishOutcome = 'ok'
    let code: string | undefined
    let error: string | undefined
    try {
      await this.publisher.publishMany(batch)
    } catch (err) {
      error = (err as Error).message?.slice(0, 160)
      code = (err as { code?: string }).code ?? (err as Error).name
      // The store refused: nothing was sent. Anything else (Redis refused or unreachable) happened
      // after the backup row committed: the republisher sends it later, so it may still arrive.
      outcome =
        code === 'ACK_ERR_STORE_UNAVAILABLE' || code === 'ACK_ERR_PUBLISH_INVALID' ? 'failed' : 'unknown'
    }
    const t = Date.now()
    for (const m of batch) {
      this.record({
        id: m.id,
        via: 'api',
        outcome,
        t0,
        t,
        backup: true,
        ...(code ? { code, error } : {}),
        ...(probe ? { probe } : {}),
      })
    }
    return outcome
  }

  /** Writes one entry with a plain XADD (no backup), as any other client would. */
  async publishRaw(
    fields: Record<string, string> = {},
    {
      id = this.nextId('raw'),
      stream = STREAM,
      payload = `{"n":${this.counter}}`,
    }: { id?: string; stream?: string; payload?: string | Buffer | null } = {},
  ): Promise<PublishOutcome> {
    const t0 = Date.now()
    let outcome: PublishOutcome = 'ok'
    let code: string | undefined
    let error: string | undefined
    try {
      const flat: (string | Buffer)[] = ['id', id, ...(payload === null ? [] : ['payload', payload])]
      flat.push(...Object.entries(fields).flat())
      await this.admin.xadd(stream, '*', ...flat)
    } catch (err) {
      const e = err as Error
      // A Redis error reply (OOM, READONLY…) was not applied; a lost connection may have been.
      code = e.name === 'ReplyError' ? e.message.split(' ')[0] : ((err as { code?: string }).code ?? e.name)
      outcome = e.name === 'ReplyError' ? 'failed' : 'unknown'
      error = e.message?.slice(0, 160)
    }
    this.record({
      id,
      via: 'xadd',
      outcome,
      t0,
      t: Date.now(),
      backup: false,
      ...(code ? { code, error } : {}),
    })
    return outcome
  }

  /** Starts steady background publishing (api and raw); `finish()` stops it. */
  startTraffic(options: Partial<TrafficOptions> = {}): Traffic {
    this.traffic = new Traffic(this, { everyMs: 50, api: 3, raw: 1, ...options }).start()
    return this.traffic
  }

  async stopTraffic(): Promise<void> {
    await this.traffic?.stop()
    this.traffic = null
  }

  publishes(): PublishRecord[] {
    return this.publishTail.read()
  }

  invocations(): InvocationRecord[] {
    return this.invocationTail.read()
  }

  /** Waits for an invocation record (from `from` on) that matches; returns it. */
  async waitForInvocation(
    match: (r: InvocationRecord) => boolean,
    { from = 0, timeoutMs = 10_000 } = {},
  ): Promise<InvocationRecord> {
    return until(
      () => this.invocations().slice(from).find(match),
      'a matching handler invocation',
      timeoutMs,
      5,
    )
  }

  /** Ids completed so far. */
  completedIds(): Set<string> {
    return new Set(
      this.invocations()
        .filter((r) => r.e === 'done')
        .map((r) => r.id),
    )
  }

  /** Dead letters: every `{stream}:dlq` entry, and the dead_letter rows (id → time). */
  async deadLetters({ table = true } = {}): Promise<Map<string, number>> {
    const out = new Map<string, number>()
    for (const stream of this.streams) {
      for (const l of await this.readLetters(stream)) out.set(l.id, Math.min(l.at, out.get(l.id) ?? Infinity))
    }
    if (table) {
      for (const row of await this.sql<{ message_id: string; at: string }>(
        'SELECT message_id, (extract(epoch from failed_at) * 1000)::bigint AS at FROM dead_letter',
      )) {
        out.set(row.message_id, Math.min(Number(row.at), out.get(row.message_id) ?? Infinity))
      }
    }
    return out
  }

  /** Every letter seen in `{stream}:dlq` so far: message id, time, error code and attempts. */
  async deadLetterEntries(stream = STREAM): Promise<Letter[]> {
    return this.readLetters(stream)
  }

  /**
   * Reads `{stream}:dlq` from where the last read stopped (a letter may hold a 10 MB payload: each is
   * read once) and keeps what it saw, so a letter Redis later loses (FLUSHALL) still counts as
   * dead-lettered. Nothing while the key is of another type (a bad-input scenario).
   */
  private async readLetters(stream: string): Promise<Letter[]> {
    const seen = this.letters.get(stream) ?? { last: '', entries: [] }
    this.letters.set(stream, seen)
    for (;;) {
      let page: [string, string[]][]
      try {
        page = await this.admin.xrange(`{${stream}}:dlq`, seen.last ? `(${seen.last}` : '-', '+', 'COUNT', 50)
      } catch (err) {
        if ((err as Error).message.startsWith('WRONGTYPE')) return seen.entries
        throw err
      }
      for (const [entryId, flat] of page) {
        const f: Record<string, string> = {}
        for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i]!] = flat[i + 1]!
        const error = JSON.parse(f['dlq.error'] ?? '{}') as { code?: string }
        seen.entries.push({
          id: f.id ?? f['dlq.entryId'] ?? entryId,
          at: Date.parse(f['dlq.failedAt'] ?? '') || Number(entryId.split('-')[0]),
          code: error.code ?? '?',
          attempts: Number(f['dlq.attempts']),
        })
        seen.last = entryId
      }
      if (page.length < 50) return seen.entries
    }
  }

  /** One statement on a short-lived connection to the scenario's database. */
  async sql<T extends object = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> {
    const client = new pg.Client({ connectionString: this.dbUrl })
    client.on('error', () => {})
    await client.connect()
    try {
      return (await client.query<T>(text, params)).rows
    } finally {
      await client.end().catch(() => {})
    }
  }

  /** ok-published ids not yet completed nor dead-lettered (raw ones only when `raw`). */
  async unsettled({ raw = true } = {}): Promise<string[]> {
    const done = this.completedIds()
    const dead = await this.deadLetters({ table: false })
    const ok = new Set(
      this.publishes()
        .filter((p) => p.outcome === 'ok' && (raw || p.backup))
        .map((p) => p.id),
    )
    return [...ok].filter((id) => !done.has(id) && !dead.has(id))
  }

  /**
   * Waits until the system is idle: every ok publish settled, each group with no lag and an empty
   * PEL, and no backup row still pending. Returns false (with a note) if that takes over `timeoutMs`.
   */
  async drain({ timeoutMs = 30_000, raw = true } = {}): Promise<boolean> {
    let state = ''
    try {
      await until(
        async () => {
          const unsettled = await this.unsettled({ raw })
          state = `${unsettled.length} ok publishes unsettled`
          if (unsettled.length > 0) return false
          for (const stream of this.streams) {
            // Undelivered: the stream's last entry is past the group's last-delivered id (XINFO's lag
            // can stay wrong after a failover).
            const [last] = await this.admin.xrevrange(stream, '+', '-', 'COUNT', 1)
            const groups = (await this.admin.xinfo('GROUPS', stream)) as unknown[][]
            for (const flat of groups) {
              const info: Record<string, unknown> = {}
              for (let i = 0; i + 1 < flat.length; i += 2) info[String(flat[i])] = flat[i + 1]
              const delivered = String(info['last-delivered-id'])
              state = `${stream} ${String(info.name)}: pending ${String(info.pending)}, last entry ${last?.[0]}, last delivered ${delivered}`
              if (Number(info.pending) > 0 || (last && compareIds(last[0], delivered) > 0)) return false
            }
          }
          const [row] = await this.sql<{ n: string }>(
            "SELECT count(*) AS n FROM redis_message_backup WHERE status = 'pending'",
          )
          state = `${row!.n} backup rows pending`
          return Number(row!.n) === 0
        },
        'the drain',
        timeoutMs,
        200,
      )
      return true
    } catch {
      this.notes.push(`drain timed out after ${timeoutMs} ms (${state})`)
      return false
    }
  }

  /** Publishes a fresh message after healing and waits for a daemon to complete it. */
  async probe(timeoutMs = 20_000): Promise<{ ok: boolean; ms: number | null }> {
    const id = this.nextId('probe')
    const started = Date.now()
    const deadline = started + timeoutMs
    while (Date.now() < deadline) {
      if ((await this.publishApi([{ id }], { probe: true })) === 'ok') break
      await sleep(200)
    }
    try {
      const done = await this.waitForInvocation((r) => r.e === 'done' && r.id === id, {
        timeoutMs: Math.max(1, deadline - Date.now()),
      })
      return { ok: true, ms: done.t - started }
    } catch {
      return { ok: false, ms: null }
    }
  }

  /**
   * Stops the traffic, drains, probes, counts, writes the result line, then asserts: lost 0,
   * unexpected 0, duplicate effects 0, still consuming; duplicate invocations only reported unless
   * absurd (more than the in-flight window per fault).
   */
  async finish(options: FinishOptions = {}): Promise<Accounting> {
    trace(`${this.options.fault}: finishing`)
    await this.stopTraffic()
    const drained = await this.drain({
      timeoutMs: options.drainMs ?? 30_000,
      raw: !options.allowUnbackedLoss,
    })
    trace(`drained: ${drained}`)
    const probe = await this.probe()
    trace(`probe: ${JSON.stringify(probe)}`)
    await sleep(300) // late duplicates of the drain's last batches
    const effects = new Map<string, number>()
    for (const row of await this.sql<{ message_id: string; n: string }>(
      'SELECT message_id, count(*) AS n FROM chaos_effect GROUP BY message_id',
    )) {
      effects.set(row.message_id, Number(row.n))
    }
    trace('effects read')
    const deadLettered = await this.deadLetters()
    trace('dead letters read')
    const invocations = this.invocations()
    const result = account({
      publishes: this.publishes(),
      invocations,
      deadLettered,
      effects,
      faults: this.faults,
      probe,
    })
    const completed = [...new Set(invocations.filter((r) => r.e === 'done').map((r) => r.id))]
    const [unconfirmed] = await this.sql<{ n: string }>(
      "SELECT count(*) AS n FROM redis_message_backup WHERE status IN ('pending', 'sent') AND message_id = ANY($1)",
      [completed],
    )
    const batchSize = Number((this.config.consumers as { batchSize?: number }[])[0]!.batchSize ?? 10)
    // Absurd: more than the in-flight window per fault, and more than half of everything published.
    const bound = Math.max(
      (this.faults.length + 1) * Math.max(20, batchSize * 2 * Math.max(1, this.daemonCount)),
      Math.ceil(result.published.attempted / 2),
    )
    const notes = [...new Set([...this.notes, ...(options.notes ?? [])])]
    if (Number(unconfirmed!.n) > 0)
      notes.push(`${unconfirmed!.n} completed messages' backup rows left unconfirmed`)
    if (result.failedThenDelivered > 0)
      notes.push(`${result.failedThenDelivered} refused or unknown publishes delivered later`)
    if (!drained) notes.push('not drained')
    if (options.allowUnbackedLoss && result.lostUnbacked.length > 0)
      notes.push(
        `${result.lostUnbacked.length} raw XADDs that Redis had acknowledged were lost with its data (no backup holds them)`,
      )
    const failures: string[] = []
    if (result.lost.length > 0)
      failures.push(`lost ${result.lost.length}: ${result.lost.slice(0, 10).join(', ')}`)
    if (!options.allowUnbackedLoss && result.lostUnbacked.length > 0)
      failures.push(
        `lost (raw XADD) ${result.lostUnbacked.length}: ${result.lostUnbacked.slice(0, 10).join(', ')}`,
      )
    if (result.unexpected.length > 0) failures.push(`unexpected ${result.unexpected.join(', ')}`)
    if (result.duplicateEffects > 0) failures.push(`duplicate effects ${result.duplicateEffects}`)
    if (!result.stillConsuming) failures.push('not consuming after healing (the probe never completed)')
    if (result.duplicateInvocations > bound)
      failures.push(`duplicate invocations ${result.duplicateInvocations} over the bound ${bound}`)
    if (!options.expectDeadLetters && result.deadLettered > 0)
      failures.push(`${result.deadLettered} unexpected dead letters`)

    const line: ScenarioResult = {
      family: this.options.family,
      fault: this.options.fault,
      runs: this.faults.length,
      seed: settings.seed,
      published: result.published,
      completed: result.completed,
      deadLettered: result.deadLettered,
      lost: result.lost.length,
      lostUnbacked: result.lostUnbacked.length,
      invocations: result.invocations,
      duplicateInvocations: result.duplicateInvocations,
      duplicateEffects: result.duplicateEffects,
      unexpected: result.unexpected.length,
      recoveryMs: result.recoveryMs,
      stillConsuming: result.stillConsuming,
      probeMs: result.probeMs,
      notes,
      durationMs: Date.now() - this.startedAt,
      passed: failures.length === 0,
      ...(failures.length ? { failures } : {}),
      ...(options.todo ? { todo: options.todo } : {}),
      dir: path.relative(ROOT, this.dir),
    }
    recordResult(line)
    assert.deepEqual(failures, [], `${this.options.fault}: ${failures.join('; ')} (records in ${this.dir})`)
    return result
  }
}

export interface TrafficOptions {
  everyMs: number
  /** Messages per tick through the API (one publishMany). */
  api: number
  /** Raw XADDs per tick. */
  raw: number
  /** Extra fields, drawn for each message. */
  fields?: () => Record<string, string>
  /** Most ticks in flight at once: a stalled Redis holds the publisher back instead of piling up. */
  maxInFlight?: number
}

/** Steady publishing in the background, every outcome recorded. */
export class Traffic {
  private timer: NodeJS.Timeout | null = null
  private readonly inFlight = new Set<Promise<unknown>>()

  constructor(
    private readonly scenario: Scenario,
    private readonly options: TrafficOptions,
  ) {}

  start(): this {
    this.timer = setInterval(() => this.tick(), this.options.everyMs)
    return this
  }

  private tick(): void {
    if (this.inFlight.size >= (this.options.maxInFlight ?? 4)) return
    const fields = () => this.options.fields?.() ?? {}
    const work = (async () => {
      if (this.options.api > 0)
        await this.scenario.publishApi(Array.from({ length: this.options.api }, () => ({ fields: fields() })))
      for (let i = 0; i < this.options.raw; i++) await this.scenario.publishRaw(fields())
    })()
    this.inFlight.add(work)
    void work.finally(() => this.inFlight.delete(work))
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      Promise.allSettled([...this.inFlight]),
      new Promise((r) => (timer = setTimeout(r, 15_000))),
    ])
    clearTimeout(timer)
  }
}
