/**
 * How a batch is cut into pool tasks. Each task is a hop to a worker thread: a structured clone, a
 * wake-up, a reply, a turn of the main thread's event loop. For a handler that takes time that hop is
 * nothing and the batch should spread over every thread; for a cheap handler it costs more than the
 * handlers themselves, and a batch cut in two waits on both threads, each of which may be descheduled
 * or collecting garbage: a few cheap messages are quicker on one thread. So the planner learns what a
 * message costs its task and cuts a batch into as many chunks as each carry CHUNK_WORTH_MS of work.
 */

/** Handler time (ms) a chunk should carry before it is worth a task of its own. */
export const CHUNK_WORTH_MS = 1

/** Weight of the newest sample in the running estimate (a few batches follow a change). */
const WEIGHT = 0.25

export class ChunkPlanner {
  /**
   * Wall time a message adds to its task (ms): the task's run time over its messages. Unknown until a
   * batch ran: until then a batch spreads over every thread, as a handler of unknown cost should.
   */
  private perMessageMs = Number.POSITIVE_INFINITY

  constructor(private readonly threads: number) {}

  /** How many chunks a batch of `n` messages is cut into: 1 to min(threads, n). */
  chunks(n: number): number {
    const wanted = Math.ceil((n * this.perMessageMs) / CHUNK_WORTH_MS)
    return Math.max(1, Math.min(this.threads, n, wanted))
  }

  /** Learns from a task that ran `n` messages in `runMs` (the worker's own clock: handler time only). */
  record(n: number, runMs: number): void {
    if (n <= 0 || !Number.isFinite(runMs) || runMs < 0) return
    const sample = runMs / n
    this.perMessageMs = Number.isFinite(this.perMessageMs)
      ? this.perMessageMs + WEIGHT * (sample - this.perMessageMs)
      : sample
  }
}

/** Splits into at most `parts` contiguous chunks of near-equal size. */
export function split<T>(items: T[], parts: number): T[][] {
  const n = Math.min(parts, items.length)
  const chunks: T[][] = []
  let start = 0
  for (let i = 0; i < n; i++) {
    const size = Math.ceil((items.length - start) / (n - i))
    chunks.push(items.slice(start, start + size))
    start += size
  }
  return chunks
}
