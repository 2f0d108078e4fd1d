/**
 * Wraps a loader so that concurrent and back-to-back callers within `ttlMs` share one load. Several
 * metrics read the same Redis and PostgreSQL answers during one scrape, and two Prometheus replicas
 * scraping at once must not double the queries: the cost stays one round trip per source per TTL,
 * whatever the number of metrics or scrapers. Nothing runs between scrapes (no timer).
 */
export function cached<T>(load: () => Promise<T>, ttlMs: number, clock = Date.now): () => Promise<T> {
  let value: { at: number; result: T } | undefined
  let inflight: Promise<T> | undefined
  return () => {
    if (value && clock() - value.at < ttlMs) return Promise.resolve(value.result)
    inflight ??= load().then(
      (result) => {
        value = { at: clock(), result }
        inflight = undefined
        return result
      },
      (err: unknown) => {
        inflight = undefined
        throw err
      },
    )
    return inflight
  }
}
