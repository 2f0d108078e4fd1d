import { setTimeout as sleep } from 'node:timers/promises'
import type { Sequelize } from 'sequelize'
import type { Logger } from '../log.js'
import { confirmBackups, markSent, recordAttempts } from './backup.js'

/**
 * Confirms backup rows off the hot path: sends (publisher), acks and attempt counts (consumers) are
 * queued and written in coalesced batches by one flush loop, so neither a publish nor a consumer waits
 * for a second statement, and a slow commit merges the batches that arrive meanwhile into one. While PostgreSQL is unreachable the
 * queue is kept (bounded) and flushed when it returns; past the bound the oldest confirmations are
 * dropped with an error log — a lost confirmation costs a deduplicated re-send, not a message.
 */
export class BackupConfirmer {
  private sentIds: string[] = []
  private acked: string[] = []
  private dead: string[] = []
  private attempts = new Map<string, number>()
  private flushing: Promise<void> | null = null
  private failing = false
  private closed = false

  constructor(
    private readonly store: Sequelize,
    private readonly log: Logger,
    private readonly limit = 100_000,
  ) {}

  /** Queues ids whose XADD succeeded (pending → sent), so the republisher leaves them alone. */
  sent(ids: string[]): void {
    if (ids.length === 0) return
    this.sentIds.push(...ids)
    this.kick()
  }

  /** Queues handled (acked) and dead-lettered message ids. */
  confirm(acked: string[], dead: string[]): void {
    if (acked.length === 0 && dead.length === 0) return
    this.acked.push(...acked)
    this.dead.push(...dead)
    this.bound()
    this.kick()
  }

  /** Queues failed-attempt counts (the larger count wins). */
  attempt(counts: Map<string, number>): void {
    for (const [id, n] of counts) this.attempts.set(id, Math.max(n, this.attempts.get(id) ?? 0))
    this.kick()
  }

  /** Waits until the queue is written (or `timeoutMs` passes); later calls queue nothing. */
  async drain(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (this.flushing && Date.now() < deadline) {
      await Promise.race([this.flushing, sleep(Math.max(1, deadline - Date.now()))])
    }
    this.closed = true
    const left = this.acked.length + this.dead.length
    if (left > 0)
      this.log.warn(
        { count: left },
        'backup confirmations not written before shutdown; they will be re-sent and deduplicated',
      )
  }

  private get queued(): number {
    return this.sentIds.length + this.acked.length + this.dead.length + this.attempts.size
  }

  private bound(): void {
    const over = this.acked.length + this.dead.length - this.limit
    if (over <= 0) return
    const fromAcked = Math.min(over, this.acked.length)
    this.acked.splice(0, fromAcked)
    this.dead.splice(0, over - fromAcked)
    this.log.error(
      { dropped: over, limit: this.limit },
      'backup confirmation queue full; oldest confirmations dropped',
    )
  }

  private kick(): void {
    if (this.flushing || this.closed) return
    this.flushing = this.flushLoop().finally(() => {
      this.flushing = null
    })
  }

  private async flushLoop(): Promise<void> {
    let backoffMs = 100
    while (this.queued > 0) {
      const sent = this.sentIds
      const acked = this.acked
      const dead = this.dead
      const attempts = this.attempts
      this.sentIds = []
      this.acked = []
      this.dead = []
      this.attempts = new Map()
      try {
        // Sent before acked: both only move a row forward, so the order keeps acked rows acked.
        await markSent(this.store, sent)
        await recordAttempts(this.store, attempts)
        await confirmBackups(this.store, acked, dead)
        if (this.failing) this.log.info('backup confirmations flushed again')
        this.failing = false
        backoffMs = 100
      } catch (err) {
        // Put the batch back in front and wait: PostgreSQL may be restarting.
        this.sentIds = [...sent, ...this.sentIds].slice(-this.limit)
        this.acked = [...acked, ...this.acked]
        this.dead = [...dead, ...this.dead]
        for (const [id, n] of attempts) this.attempts.set(id, Math.max(n, this.attempts.get(id) ?? 0))
        this.bound()
        if (!this.failing)
          this.log.warn({ err, queued: this.queued }, 'backup confirmations failed; queued for retry')
        this.failing = true
        if (this.closed) return
        await sleep(backoffMs)
        backoffMs = Math.min(5_000, backoffMs * 2)
      }
    }
  }
}
