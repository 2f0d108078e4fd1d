import { randomBytes } from 'node:crypto'
import type { Sequelize, Transaction } from 'sequelize'
import { PublishError, StoreError } from './errors.js'
import {
  batchEncoder,
  dueTime,
  toRow,
  type PublishMessage,
  type PublishOptions,
  type PublishResult,
} from './publishMessage.js'
import { createLogger, type Logger } from './log.js'
import { planEntries, sendEntries, type EntryPlan } from './redis/addEntries.js'
import { closeRedis, connectRedis, type RedisClient } from './redis/connect.js'
import { consumerName } from './redis/consumerName.js'
import { classify } from './redis/errors.js'
import { heartbeatKey } from './redis/keys.js'
import { redisSettingsFromEnv } from './redis/settings.js'
import type { RedisTopology } from './redisConfig.js'
import { insertBackups, markOwnSent, type BackupRow } from './store/backup.js'
import { createStore } from './store/connect.js'
import { BackupConfirmer } from './store/confirmer.js'
import { insertDelays } from './store/delays.js'
import { Disowner } from './store/disowner.js'

export { dueTime, encodeMessage, MAX_DELAY_MS } from './publishMessage.js'
export type { PublishMessage, PublishOptions, PublishResult } from './publishMessage.js'

export interface PublisherOptions {
  /** An ioredis connection (a Redis or a Cluster) to use (not closed by close()), or… */
  redis?: RedisClient
  /** …a URL to open one (credentials and TLS in every mode); defaults to REDIS_URL, then redis://127.0.0.1:6379. */
  redisUrl?: string
  /**
   * Sentinel or Cluster (the config's `redis` section); defaults to REDIS_MODE, REDIS_SENTINELS,
   * REDIS_MASTER_NAME and REDIS_CLUSTER_NODES, else standalone on the URL.
   */
  topology?: RedisTopology
  logger?: Logger
  /** PostgreSQL for the backup (an opened sequelize instance, not closed by close()), or… */
  store?: Sequelize | null
  /** …a URL to connect to; the tables must exist (`ackstate migrate`). Without either: no backup. */
  databaseUrl?: string
  /** Back up every stream (default), none, or those the function accepts. */
  backup?: boolean | ((stream: string) => boolean)
  /** Owner id on the backup rows; defaults to a unique id for this publisher. */
  publisherId?: string
  /** Keep a heartbeat for publisherId (default true with a store; the daemon has its own). */
  heartbeat?: boolean
  heartbeatTtlMs?: number
}

/**
 * Publishes messages to Redis Streams in the entry format consumers expect. With a store, each
 * message is first committed as a pending backup row (one INSERT per batch), then XADDed (one
 * pipeline per batch): a publish resolves only when both succeeded, and a row whose XADD failed is
 * re-sent by the republisher. Rejections carry a code: never a silent drop.
 */
export class Publisher {
  /** Owner id written on backup rows; its heartbeat tells the republisher this publisher is alive. */
  readonly publisherId: string
  private connection: RedisClient
  private readonly ownsRedis: boolean
  /** How to open the connection again should ioredis end it (a Cluster that lost every node). */
  private readonly reopen: (() => RedisClient) | null
  private closed = false
  private readonly store: Sequelize | null
  private readonly ownsStore: boolean
  private readonly backup: (stream: string) => boolean
  private readonly log: Logger
  private heartbeat: NodeJS.Timeout | undefined
  /**
   * Marks sent rows in the background, for a publisher without a heartbeat only: with one, its rows
   * stay pending while it lives (the republisher leaves a live owner's rows alone) and are handed over
   * at close, so the publish path costs one INSERT and one XADD per batch and nothing after.
   */
  private readonly confirmer: BackupConfirmer | null
  /** Hands rows whose XADD failed to the republisher (with a store). */
  private readonly disowner: Disowner | null
  /** Publishes between their commit and their XADD reply; close() waits for them. */
  private readonly inflight = new Set<Promise<unknown>>()

  constructor(options: PublisherOptions = {}) {
    this.log = options.logger ?? createLogger('warn')
    if (options.redis) {
      this.connection = options.redis
      this.ownsRedis = false
      this.reopen = null
    } else {
      // Validated like the config's keys: a typo fails here, not as a connection to somewhere else.
      const env = { ...process.env, ...(options.redisUrl ? { REDIS_URL: options.redisUrl } : {}) }
      const fromEnv = redisSettingsFromEnv(env)
      const target = { redisUrl: fromEnv.redisUrl, redis: options.topology ?? fromEnv.redis }
      this.reopen = () => connectRedis(target, 'publisher', this.log)
      this.connection = this.reopen()
      this.ownsRedis = true
    }
    if (options.store !== undefined) {
      this.store = options.store
      this.ownsStore = false
    } else if (options.databaseUrl) {
      this.store = createStore(options.databaseUrl, { logger: this.log })
      this.ownsStore = true
    } else {
      this.store = null
      this.ownsStore = false
    }
    this.disowner = this.store ? new Disowner(this.store, this.log) : null
    const heartbeat = this.store !== null && options.heartbeat !== false
    this.confirmer = this.store && !heartbeat ? new BackupConfirmer(this.store, this.log) : null
    const backup = options.backup ?? true
    this.backup = typeof backup === 'function' ? backup : () => backup
    this.publisherId = options.publisherId ?? `publisher-${consumerName()}-${randomBytes(3).toString('hex')}`
    if (heartbeat) this.startHeartbeat(options.heartbeatTtlMs ?? 3_000)
  }

  /** The connection; one this publisher opened and ioredis gave up on is opened again. */
  private get redis(): RedisClient {
    if (this.reopen && !this.closed && this.connection.status === 'end') this.connection = this.reopen()
    return this.connection
  }

  async publish(message: PublishMessage, options: PublishOptions = {}): Promise<PublishResult> {
    const [result] = await this.publishMany([message], options)
    return result!
  }

  /**
   * Publishes a batch. With `transaction` (a caller's sequelize transaction), the backup rows are
   * written inside it and the XADD happens after it commits — a rolled-back transaction sends nothing
   * — and the results carry `entryId: null`; a failed XADD after the commit is left to the
   * republisher. Without a transaction it resolves once the rows are committed and Redis took every
   * entry, and rejects naming how many were refused.
   */
  async publishMany(messages: PublishMessage[], options: PublishOptions = {}): Promise<PublishResult[]> {
    if (!Array.isArray(messages)) {
      throw new PublishError(
        'ACK_ERR_PUBLISH_INVALID',
        'Cannot publish: publishMany() takes an array of messages.',
      )
    }
    const now = new Date()
    const encode = batchEncoder(now)
    const encoded = messages.map((m) => {
      const e = encode(m)
      return { id: e.id, stream: m.stream, fields: e.fields }
    })
    if (encoded.length === 0) return []
    const due = dueTime(options, now)
    if (due) return this.schedule(encoded, due, options.transaction)
    const rows = this.store ? encoded.filter((e) => this.backup(e.stream)).map(toRow) : []
    if (options.transaction && rows.length === 0) {
      throw new PublishError(
        'ACK_ERR_PUBLISH_INVALID',
        'Cannot publish in a transaction without the backup: give the publisher a store (store or databaseUrl) and keep backup on for the stream.',
      )
    }
    const plan = () =>
      planEntries(
        encoded,
        (e) => e.stream,
        (e) => e.fields,
      )
    if (options.transaction) {
      await this.insert(rows, options.transaction)
      options.transaction.afterCommit(() => {
        this.track(this.send(encoded, rows, plan())).catch((err: unknown) => {
          this.log.warn(
            { err, count: encoded.length },
            'XADD after commit failed; the republisher will re-send',
          )
        })
      })
      return encoded.map((e) => ({ id: e.id, stream: e.stream, entryId: null }))
    }
    let entries: EntryPlan
    if (rows.length > 0) {
      // The COPY goes out first; the XADD's argument is packed while PostgreSQL commits the rows.
      const inserting = this.insert(rows)
      inserting.catch(() => {}) // awaited below; this only keeps it from counting as unhandled meanwhile
      entries = await afterPendingIo(plan)
      await inserting
    } else {
      entries = plan()
    }
    const entryIds = await this.track(this.send(encoded, rows, entries))
    return encoded.map((e, i) => ({ id: e.id, stream: e.stream, entryId: entryIds[i]! }))
  }

  /** Stores a delayed batch; the daemon's delay scheduler sends it when due. */
  private async schedule(
    encoded: { id: string; stream: string; fields: string[] }[],
    deliverAt: Date,
    transaction?: Transaction,
  ): Promise<PublishResult[]> {
    if (!this.store) {
      throw new PublishError(
        'ACK_ERR_PUBLISH_INVALID',
        'Cannot publish with a delay without the store: give the publisher a store or databaseUrl (delays are kept in PostgreSQL until due).',
      )
    }
    try {
      await insertDelays(
        this.store,
        encoded.map((e) => ({ ...toRow(e), deliverAt })),
        transaction,
      )
    } catch (err) {
      throw new StoreError(
        'ACK_ERR_STORE_UNAVAILABLE',
        `Cannot publish with a delay: the delay rows could not be written (${err instanceof Error ? err.message : String(err)}); nothing was scheduled. Check DATABASE_URL and PostgreSQL, then publish again.`,
        { cause: err },
      )
    }
    return encoded.map((e) => ({
      id: e.id,
      stream: e.stream,
      entryId: null,
      deliverAt: deliverAt.toISOString(),
    }))
  }

  private async insert(rows: BackupRow[], transaction?: Transaction): Promise<void> {
    try {
      await insertBackups(this.store!, rows, this.publisherId, transaction)
    } catch (err) {
      throw new StoreError(
        'ACK_ERR_STORE_UNAVAILABLE',
        `Cannot publish: the backup rows could not be written (${err instanceof Error ? err.message : String(err)}); nothing was sent. Check DATABASE_URL and PostgreSQL, then publish again.`,
        { cause: err },
      )
    }
  }

  /**
   * One round trip of script calls (on a Cluster one per slot, in parallel); on a refusal the
   * backed-up rows are handed to the republisher.
   */
  private async send(
    encoded: { id: string; stream: string; fields: string[] }[],
    rows: BackupRow[],
    plan: EntryPlan,
  ): Promise<string[]> {
    const replies = await sendEntries(this.redis, plan)
    const failures = replies.filter(([err]) => err)
    if (failures.length > 0) {
      // On a Cluster one slot may refuse while others took their entries: only the refused rows go
      // to the republisher (a wholesale re-send would duplicate the rest).
      const refused = new Set(encoded.filter((_, i) => replies[i]![0]).map((e) => e.id))
      this.confirmer?.sent(rows.filter((r) => !refused.has(r.messageId)).map((r) => r.messageId))
      await this.disowner?.disown(rows.filter((r) => refused.has(r.messageId)).map((r) => r.messageId))
      throw classify(failures[0]![0], `XADD (${failures.length} of ${encoded.length} refused)`)
    }
    this.confirmer?.sent(rows.map((r) => r.messageId))
    return replies.map(([, entryId]) => entryId as string)
  }

  private startHeartbeat(ttlMs: number): void {
    const beat = () => {
      this.redis.set(heartbeatKey(this.publisherId), String(Date.now()), 'PX', ttlMs).catch(() => {
        // Redis is down: publishes fail loudly meanwhile; the republisher may take this publisher's
        // rows, which at worst re-sends messages that deduplication absorbs.
      })
    }
    beat()
    this.heartbeat = setInterval(beat, Math.max(100, Math.floor(ttlMs / 3)))
    this.heartbeat.unref()
  }

  private track<T>(send: Promise<T>): Promise<T> {
    this.inflight.add(send)
    void send.then(
      () => this.inflight.delete(send),
      () => this.inflight.delete(send),
    )
    return send
  }

  /**
   * Waits for the publishes in flight, hands this publisher's rows over (marked sent, so the
   * republisher has nothing to check once the heartbeat is gone), stops the heartbeat and closes the
   * connections this publisher opened.
   */
  async close(): Promise<void> {
    await Promise.allSettled([...this.inflight])
    await this.disowner?.stop()
    await this.confirmer?.drain(2_000)
    if (this.heartbeat) {
      await markOwnSent(this.store!, this.publisherId, this.disowner!.pending).catch((err: unknown) => {
        // The republisher checks a gone publisher's pending rows against their streams instead.
        this.log.warn({ err }, "could not mark this publisher's rows sent at close")
      })
      clearInterval(this.heartbeat)
      await this.redis.del(heartbeatKey(this.publisherId)).catch(() => {})
    }
    this.closed = true
    if (this.ownsRedis) await closeRedis(this.connection)
    if (this.ownsStore) await this.store!.close()
  }
}

export function createPublisher(options: PublisherOptions = {}): Publisher {
  return new Publisher(options)
}

/**
 * Runs `work` once the I/O already started in this turn went out (a macrotask: after the promise
 * jobs that write the COPY), so the work overlaps the server's part instead of delaying the request.
 */
function afterPendingIo<T>(work: () => T): Promise<T> {
  return new Promise((resolve, reject) => {
    setImmediate(() => {
      try {
        resolve(work())
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)))
      }
    })
  })
}
