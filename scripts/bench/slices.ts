/**
 * Runs `work` over consecutive slices of `items`, `callers` at a time: each caller takes the next
 * slice as soon as its previous one finished (callers concurrent requests, each awaiting its own).
 */
export async function bySlices<T>(
  items: T[],
  size: number,
  callers: number,
  work: (slice: T[]) => Promise<void>,
): Promise<void> {
  let next = 0
  const caller = async () => {
    while (next < items.length) {
      const start = next
      next += size
      await work(items.slice(start, start + size))
    }
  }
  await Promise.all(Array.from({ length: callers }, caller))
}
