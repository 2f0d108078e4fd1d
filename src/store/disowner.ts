import type { Sequelize } from 'sequelize'
import type { Logger } from '../log.js'
import { disownBackups } from './backup.js'

/**
 * Hands a publisher's rows whose XADD failed to the republisher (owner cleared), so they are re-sent
 * after its short delay instead of once the owner looks stale. If PostgreSQL refuses that too, the
 * ids are remembered — never to be marked sent at close — and handed over again every second.
 */
export class Disowner {
  /** Rows whose XADD failed and that could not be disowned yet. */
  private readonly waiting = new Set<string>()
  private retry: NodeJS.Timeout | undefined
  private stopped = false

  constructor(
    private readonly store: Sequelize,
    private readonly log: Logger,
  ) {}

  /** Ids still waiting to be handed over. */
  get pending(): string[] {
    return [...this.waiting]
  }

  async disown(ids: string[]): Promise<void> {
    if (ids.length === 0) return
    await disownBackups(this.store, ids).then(
      () => {
        for (const id of ids) this.waiting.delete(id)
      },
      (err: unknown) => {
        for (const id of ids) this.waiting.add(id)
        this.log.warn(
          { err, count: ids.length },
          'could not hand failed publishes to the republisher; retrying',
        )
        this.retry ??= setTimeout(() => {
          this.retry = undefined
          if (this.stopped || this.waiting.size === 0) return
          void this.disown(this.pending)
        }, 1_000).unref()
      },
    )
  }

  /** One last hand-over of what is waiting, then no more retries. */
  async stop(): Promise<void> {
    if (this.waiting.size > 0) await this.disown(this.pending)
    this.stopped = true
    clearTimeout(this.retry)
  }
}
