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
 * A second diff a little later: a publisher that had not yet followed the failover may have written
 * to the old master after the first one, and the old master drops those writes when it rejoins as a
 * replica.
 */
const RECHECK_AFTER_MS = 6_000

/**
 * Replication is asynchronous: a failover (SENTINEL FAILOVER, a frozen master replaced, a Cluster
 * replica promoted) or a restart from an older snapshot loses the last writes the old server
 * acknowledged — XADDs the publisher was told succeeded. A group that vanished shows the loss
 * (startConsumer recovers then), a stream that merely lacks its tail does not. So before reading,
 * each consumer asks, at most once per `reclaim.intervalMs` and stream, which server holds its stream;
 * when that changed, the backup is diffed against the stream (recoverStream: only what is missing is
 * re-sent, and deduplication absorbs a re-send that raced an ack), and once more a little later.
 * Without the store there is nothing to re-send from, and nothing is asked.
 */
export class FailoverWatch {
  private readonly known = new Map<string, string | null>()
  private readonly checkedAt = new Map<string, number>()
  private readonly recheckAt = new Map<string, number>()
  private readonly running = new Map<string, Promise<void>>()

  constructor(private readonly res: Resources) {}

  /** Resolves when the stream's server is known unchanged, or the lost messages were re-sent. */
  check(name: string, stream: string): Promise<void> {
    if (!this.res.store) return Promise.resolve()
    const due = (this.checkedAt.get(stream) ?? 0) + this.res.config.reclaim.intervalMs <= Date.now()
    if (!due) return Promise.resolve()
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
      this.recheckAt.set(stream, Date.now() + RECHECK_AFTER_MS)
      await this.recover(name, stream)
    } else if ((this.recheckAt.get(stream) ?? Infinity) <= Date.now()) {
      this.recheckAt.delete(stream)
      await this.recover(name, stream)
    }
  }

  private async recover(name: string, stream: string): Promise<void> {
    const log = this.res.logFor(name)
    if (!this.res.config.recovery.auto) {
      log.warn('recovery.auto is off: run `ackstate recover --stream` to re-send what the failover lost')
      return
    }
    try {
      const result = await recoverStream(this.res.redis, this.res.store!, stream)
      if (result.resent > 0) {
        log.warn(
          { resent: result.resent, checked: result.checked },
          're-sent the backed-up messages the new redis server lacked',
        )
      }
    } catch (err) {
      // Not done: diff again on the next check.
      this.recheckAt.set(stream, 0)
      const failure = classify(err, `recovering ${stream} after a failover`)
      if (failure.code === BROKER_UNAVAILABLE || failure.code === GROUP_MISSING) throw failure
      log.error({ err }, 'recovery after a failover failed; retrying on the next check')
    }
  }
}
