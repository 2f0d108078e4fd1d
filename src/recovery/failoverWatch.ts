import { BROKER_UNAVAILABLE, GROUP_MISSING } from '../../machines/types.js'
import { classify } from '../redis/errors.js'
import type { Resources } from '../resources.js'
import { recoverStream } from './recoverStream.js'

/**
 * The run_id of the server that holds KEYS[1]: a script runs where its key lives, so on a Cluster
 * this asks the master of the stream's slot, and through Sentinel whichever master the connection
 * reached. A new run_id means another process holds the stream now: a promoted replica, or a
 * restarted server.
 */
const RUN_ID = `return string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')`

/**
 * Diffs again this long after the switch was noticed. A publisher that had not yet followed the
 * failover writes to the old master until the sentinel demotes it (its INFO period is 10 s), and the
 * demoted master drops those writes as it resyncs: each later diff catches what landed there since.
 */
const RECHECKS_AFTER_MS = [2_000, 6_000, 15_000, 30_000]
/** A re-check looks at rows written since this long before the switch was noticed (replication lag). */
const RECHECK_LOOKBACK_MS = 30_000

/**
 * Replication is asynchronous: a failover (SENTINEL FAILOVER, a frozen master replaced, a Cluster
 * replica promoted) or a restart from an older snapshot loses the last writes the old server
 * acknowledged — XADDs the publisher was told succeeded. A group that vanished shows the loss
 * (startConsumer recovers then), a stream that merely lacks its tail does not. So before reading,
 * each consumer asks, at most once per `reclaim.intervalMs` and stream, which server holds its stream;
 * when that changed, the backup is diffed against the stream (recoverStream: only what is missing is
 * re-sent, and deduplication absorbs a re-send that raced an ack), and again over the next 30 s.
 * Without the store there is nothing to re-send from, and nothing is asked.
 */
export class FailoverWatch {
  private readonly known = new Map<string, string | null>()
  private readonly checkedAt = new Map<string, number>()
  /** Per stream whose server changed: when to diff again, and from which row time. */
  private readonly rechecks = new Map<string, { due: number[]; since: Date }>()
  private readonly running = new Map<string, Promise<void>>()

  constructor(private readonly res: Resources) {}

  /** Whether `check` would ask Redis now (the store is on and the stream's interval has passed). */
  isDue(stream: string): boolean {
    return (
      this.res.store !== null &&
      (this.checkedAt.get(stream) ?? 0) + this.res.config.reclaim.intervalMs <= Date.now()
    )
  }

  /** Resolves when the stream's server is known unchanged, or the lost messages were re-sent. */
  check(name: string, stream: string): Promise<void> {
    if (!this.isDue(stream)) return Promise.resolve()
    let run = this.running.get(stream)
    if (!run) {
      // Consumers of several groups on one stream share one check.
      run = this.run(name, stream).finally(() => this.running.delete(stream))
      this.running.set(stream, run)
    }
    return run
  }

  private async run(name: string, stream: string): Promise<void> {
    let runId: string | null
    try {
      runId = (await this.res.redis.eval(RUN_ID, 1, stream)) as string | null
    } catch (err) {
      throw classify(err, `INFO server (holder of ${stream})`)
    }
    this.checkedAt.set(stream, Date.now())
    const before = this.known.get(stream)
    this.known.set(stream, runId)
    if (before !== undefined && before !== runId) {
      this.res
        .logFor(name)
        .warn(
          { previous: before, current: runId },
          'the redis server holding the stream changed (failover or restart); diffing the backup against it',
        )
      const noticed = Date.now()
      this.rechecks.set(stream, {
        due: RECHECKS_AFTER_MS.map((ms) => noticed + ms),
        since: new Date(noticed - RECHECK_LOOKBACK_MS),
      })
      await this.recover(name, stream)
    } else {
      const recheck = this.rechecks.get(stream)
      if (!recheck || recheck.due[0]! > Date.now()) return
      while (recheck.due.length > 0 && recheck.due[0]! <= Date.now()) recheck.due.shift()
      if (recheck.due.length === 0) this.rechecks.delete(stream)
      await this.recover(name, stream, recheck.since)
    }
  }

  /** Diffs the backup against the stream: every unacked row, or those written at or after `since`. */
  private async recover(name: string, stream: string, since?: Date): Promise<void> {
    const log = this.res.logFor(name)
    if (!this.res.config.recovery.auto) {
      log.warn('recovery.auto is off: run `ackstate recover --stream` to re-send what the failover lost')
      return
    }
    try {
      const result = await recoverStream(this.res.redis, this.res.store!, stream, since ? { since } : {})
      if (result.resent > 0) {
        log.warn(
          { resent: result.resent, checked: result.checked },
          're-sent the backed-up messages the new redis server lacked',
        )
      }
    } catch (err) {
      // Not done: diff everything again on the next check.
      const recheck = this.rechecks.get(stream)
      this.rechecks.set(stream, { due: [0, ...(recheck?.due ?? [])], since: since ?? new Date(0) })
      const failure = classify(err, `recovering ${stream} after a failover`)
      if (failure.code === BROKER_UNAVAILABLE || failure.code === GROUP_MISSING) throw failure
      log.error({ err }, 'recovery after a failover failed; retrying on the next check')
    }
  }
}
