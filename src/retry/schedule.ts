/**
 * When each consumer should next look at its PEL for due retries. The claim step consults it so a
 * consumer does not query XPENDING on every loop, and the read step shortens its BLOCK so a due
 * retry is not held up behind a long blocking read.
 */
export class RetrySchedule {
  private readonly next = new Map<string, number>()

  constructor(
    /** Longest gap between two scans: also how fast orphans handed to this consumer are picked up. */
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** True when the consumer should scan now. */
  isDue(name: string): boolean {
    return this.now() >= (this.next.get(name) ?? 0)
  }

  /** After a scan: look again at `at` at the latest (the earliest known due retry), else after the interval. */
  scanned(name: string, earliestDueAt?: number): void {
    const fallback = this.now() + this.intervalMs
    this.next.set(name, earliestDueAt === undefined ? fallback : Math.min(fallback, earliestDueAt))
  }

  /** A retry was just recorded: scan no later than when it is due. */
  expect(name: string, dueAt: number): void {
    this.next.set(name, Math.min(this.next.get(name) ?? Infinity, dueAt))
  }

  /** Scan on the next loop (e.g. orphans were just handed to this consumer). */
  wake(name: string): void {
    this.next.set(name, 0)
  }

  /** How long a blocking read may wait before the next scan is due (never below 1 ms). */
  msUntilDue(name: string): number {
    return Math.max(1, (this.next.get(name) ?? 0) - this.now())
  }
}
