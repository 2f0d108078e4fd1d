import v8 from 'node:v8'

/**
 * How far V8 lets the old generation grow past what survived the last full GC before it collects
 * again: the limit is `live × (1 + percent/100)` (plus room for the young generation). 0 leaves it to
 * V8, whose factor on a machine with plenty of memory goes up to 4: the daemon's main thread, which
 * keeps ~25 MB live and promotes about a kilobyte per message it passes through, then sits on
 * ~130 MB of heap, and reaches that size only after a few hundred thousand messages, so its RSS
 * climbs long after start-up although nothing is retained. The flag is process-wide (worker threads
 * included) and V8 reads it whenever it sets a new limit, so it applies from the next GC on.
 */
export function applyHeapGrowth(percent: number): void {
  v8.setFlagsFromString(`--heap-growing-percent=${percent}`)
}
