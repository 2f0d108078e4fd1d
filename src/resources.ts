import type { Sequelize } from 'sequelize'
import { BatchesAhead } from './actors/batchAhead.js'
import type { Config, ConsumerConfig } from './config.js'
import { childFor, type Logger } from './log.js'
import type { HandlerPool } from './pool/handlerPool.js'
import { closeRedis, connectRedis, type RedisClient } from './redis/connect.js'
import { FailoverWatch } from './recovery/failoverWatch.js'
import { RetrySchedule } from './retry/schedule.js'
import { BackupConfirmer } from './store/confirmer.js'

/** How long the shutdown waits for queued backup confirmations. */
const CONFIRM_DRAIN_MS = 1_500

/**
 * The live resources the actor implementations close over: connections, pools, loggers. They never
 * enter machine context (it must stay serialisable); actors find theirs by consumer name.
 */
export class Resources {
  /** Shared connection for non-blocking commands (XACK, XADD, XGROUP). */
  private shared: RedisClient | null = null
  /** One blocking connection per consumer: a blocked XREADGROUP must not stall anyone else. */
  readonly readers = new Map<string, RedisClient>()
  private readonly consumers = new Map<string, ConsumerConfig>()
  private readonly loggers = new Map<string, Logger>()
  /** Every pool opened and not yet retired: what close() must close. */
  private readonly everyPool: Set<HandlerPool>
  /** When each consumer next scans its PEL for due retries. */
  readonly schedule: RetrySchedule
  /** Writes backup confirmations and attempt counts in the background; null without a store. */
  readonly confirmer: BackupConfirmer | null
  /** Notices when the server behind a stream changed (a failover) and re-sends what it lacks. */
  readonly failovers: FailoverWatch
  /** The work of each consumer's batch just read (claim, pool run), started before the machine steps to processing. */
  readonly batchesAhead = new BatchesAhead()
  /**
   * Group creation and the start-up recovery it may bring, in progress, by stream and group: the
   * read loops of a consumer starting together wait for one another's (src/actors/startConsumer.ts).
   */
  readonly preparingGroups = new Map<string, Promise<void>>()

  constructor(
    readonly config: Config,
    readonly log: Logger,
    /** Handler pool of each consumer (consumers with the same module share one pool). */
    readonly pools: Map<string, HandlerPool>,
    /** PostgreSQL (backup, dead letters), or null when `store.enabled` is false. */
    readonly store: Sequelize | null = null,
  ) {
    this.schedule = new RetrySchedule(config.reclaim.intervalMs)
    this.everyPool = new Set(pools.values())
    this.confirmer = store ? new BackupConfirmer(store, log.child({ actor: 'backup-confirmer' })) : null
    this.failovers = new FailoverWatch(this)
    for (const c of config.consumers) {
      this.consumers.set(c.name, c)
      this.loggers.set(c.name, childFor(log, `consumer-${c.name}`, { stream: c.stream, group: c.group }))
    }
  }

  /**
   * The shared connection (standalone, Sentinel or Cluster, per `redis.mode`). ioredis reconnects by
   * itself; one it has ended anyway is replaced rather than failing every command from then on.
   */
  get redis(): RedisClient {
    if (this.shared?.status === 'end') this.shared = null
    if (!this.shared) {
      const shared = connectRedis(this.config, 'commands', this.log)
      shared.on('ready', () => this.brokerReady())
      this.shared = shared
    }
    return this.shared
  }

  /** Called each time the shared connection is (again) ready; the runtime wakes waiting consumers. */
  brokerReady: () => void = () => {}

  /**
   * The current state of every actor, by id (set by the runtime once its actors exist): published in
   * this daemon's heartbeat so `ackstate status` can show a running daemon's actors.
   */
  describeActors: () => Record<string, string> = () => ({})

  /** The heartbeat value: when, who, and what each actor is doing. */
  heartbeatValue(): string {
    return JSON.stringify({ at: Date.now(), pid: process.pid, actors: this.describeActors() })
  }

  /** Settings and pools a reload prepared, switched in per consumer by activate(). */
  private readonly staged = new Map<string, { config: ConsumerConfig; pool: HandlerPool }>()
  /** Consumers a reload removed: their pool is let go once they stopped. */
  private readonly removing = new Set<string>()

  /** Prepares a reload: new consumers' settings and pools, and the names that go away. */
  stage(consumers: ConsumerConfig[], pools: Map<string, HandlerPool>, removed: string[]): void {
    for (const c of consumers) {
      const pool = pools.get(c.name)
      if (pool) this.staged.set(c.name, { config: c, pool })
    }
    for (const name of removed) this.removing.add(name)
  }

  /**
   * Switches a consumer to its staged settings and pool: called by the supervisor right before it
   * spawns the consumer's new actor, so the old actor finished with the old pool.
   */
  activate(name: string): void {
    const next = this.staged.get(name)
    if (!next) return
    this.staged.delete(name)
    this.removing.delete(name)
    this.consumers.set(name, next.config)
    this.loggers.set(
      name,
      childFor(this.log, `consumer-${name}`, { stream: next.config.stream, group: next.config.group }),
    )
    this.pools.set(name, next.pool)
    this.retireUnusedPools()
  }

  /** After a consumer stopped: if a reload removed it, its settings and pool go too. */
  release(name: string): void {
    if (!this.removing.delete(name)) return
    this.consumers.delete(name)
    this.pools.delete(name)
    this.retireUnusedPools()
  }

  /** Pools no consumer uses any more (replaced or removed) are closed; in-flight tasks finish first. */
  private retireUnusedPools(): void {
    const used = new Set(this.pools.values())
    for (const pool of this.everyPool) {
      if (used.has(pool)) continue
      this.everyPool.delete(pool)
      pool
        .close()
        .catch((err: unknown) => this.log.warn({ err, module: pool.module }, 'closing a retired pool failed'))
    }
  }

  consumer(name: string): ConsumerConfig {
    const c = this.consumers.get(name)
    if (!c) throw new Error(`unknown consumer "${name}"`)
    return c
  }

  /**
   * Whether consumer `name` is this daemon's only read loop on its stream and group: the pending
   * entries of the daemon's Redis consumer there are then all its own (src/redis/freshClaims.ts).
   */
  readsAlone(name: string): boolean {
    const c = this.consumer(name)
    if (c.readers > 1) return false
    for (const other of this.consumers.values())
      if (other !== c && other.stream === c.stream && other.group === c.group) return false
    return true
  }

  pool(name: string): HandlerPool {
    const p = this.pools.get(name)
    if (!p) throw new Error(`no handler pool for consumer "${name}"`)
    return p
  }

  logFor(name: string): Logger {
    return this.loggers.get(name) ?? this.log
  }

  /** The consumer's blocking connection, opened (again) when it has none or ioredis ended it. */
  reader(name: string, consumer: string): RedisClient {
    let r = this.readers.get(name)
    if (r?.status === 'end') this.dropReader(name)
    if (!r || r.status === 'end') {
      r = connectRedis(this.config, `reader:${name}:${consumer}`, this.logFor(name), { blocking: true })
      this.readers.set(name, r)
    }
    return r
  }

  /**
   * Drops a consumer's blocking connection at once; a blocked XREADGROUP ends with it. With `only`,
   * only if that is still the consumer's connection (a late timer must not drop its replacement).
   */
  dropReader(name: string, only?: RedisClient): void {
    const r = this.readers.get(name)
    if (!r || (only && r !== only)) return
    this.readers.delete(name)
    r.disconnect()
  }

  /** Closes every pool (waiting for tasks unless forced) and every connection. */
  async close(force: boolean): Promise<void> {
    for (const { pool } of this.staged.values()) this.everyPool.add(pool)
    const pools = [...this.everyPool]
    await Promise.allSettled(pools.map((p) => (force ? p.destroy() : p.close())))
    for (const name of [...this.readers.keys()]) this.dropReader(name)
    if (this.shared) {
      const shared = this.shared
      this.shared = null
      await closeRedis(shared)
    }
    await this.confirmer?.drain(CONFIRM_DRAIN_MS)
    await this.store?.close().catch((err: unknown) => this.log.warn({ err }, 'closing the store failed'))
  }
}
