/**
 * Counts the messages a pool holds (reserved before a read, released once processed). A reader that
 * finds the pool full waits here instead of reading: back-pressure rather than a buffer or a drop.
 * Holdings are tracked per holder so a crashed consumer's share can be returned when it restarts.
 */
export class CapacityGate {
  used = 0
  private closed = false
  private readonly held = new Map<string, number>()
  private waiters: { holder: string; want: number; resolve: (n: number) => void }[] = []

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`capacity must be a positive integer, got ${capacity}`)
    }
  }

  /** Resolves with 1..want messages granted to `holder`, waiting while the pool is full. */
  reserve(holder: string, want: number, signal?: AbortSignal): Promise<number> {
    if (this.closed) return Promise.resolve(0)
    const free = this.capacity - this.used
    if (free > 0 && this.waiters.length === 0)
      return Promise.resolve(this.grant(holder, Math.min(want, free)))
    return new Promise((resolve, reject) => {
      const waiter = { holder, want, resolve }
      this.waiters.push(waiter)
      signal?.addEventListener(
        'abort',
        () => {
          this.waiters = this.waiters.filter((w) => w !== waiter)
          reject(signal.reason as Error)
        },
        { once: true },
      )
    })
  }

  /** Whether `count` messages fit now, with nobody waiting before them. */
  hasRoomFor(count: number): boolean {
    return !this.closed && this.waiters.length === 0 && this.capacity - this.used >= count
  }

  /** Grants `count` messages to `holder` at once; only after `hasRoomFor(count)` said yes. */
  take(holder: string, count: number): void {
    if (!this.hasRoomFor(count)) throw new RangeError(`no room for ${count} messages in the pool`)
    this.grant(holder, count)
  }

  /** Returns `count` messages of `holder`'s share. */
  release(holder: string, count: number): void {
    const had = this.held.get(holder) ?? 0
    const n = Math.max(0, Math.min(count, had))
    if (n === 0) return
    this.held.set(holder, had - n)
    this.used -= n
    this.wake()
  }

  /** Returns everything `holder` still holds (a consumer that crashed or restarted). */
  releaseAll(holder: string): void {
    this.release(holder, this.held.get(holder) ?? 0)
  }

  /** Wakes every waiter with 0: the pool is shutting down. */
  close(): void {
    this.closed = true
    for (const w of this.waiters.splice(0)) w.resolve(0)
  }

  private grant(holder: string, n: number): number {
    this.used += n
    this.held.set(holder, (this.held.get(holder) ?? 0) + n)
    return n
  }

  private wake(): void {
    while (this.waiters.length > 0 && this.used < this.capacity) {
      const w = this.waiters.shift()!
      w.resolve(this.grant(w.holder, Math.min(w.want, this.capacity - this.used)))
    }
  }
}
