import type { Redis } from 'ioredis'
import type { Publisher } from '../../src/publish.js'
import { readAll } from './redis.js'

/** A steady flow of publishes, one at a time, `everyMs` apart (a slow or failing one delays the next). */
export interface Load {
  /** Ids a publish was attempted for: with the backup on, each must be handled, refused or not. */
  attempted: string[]
  /** Publishes that rejected, by error code. */
  rejected: Record<string, number>
  /** Stops publishing once the publish in flight settled. */
  stop(): Promise<void>
}

export function steadyLoad(publisher: Publisher, stream: string, seen: string, everyMs = 20): Load {
  const load: Load = { attempted: [], rejected: {}, stop: async () => {} }
  let stopped = false
  const loop = (async () => {
    for (let n = 0; !stopped; n++) {
      const id = `m-${String(n).padStart(5, '0')}`
      const started = Date.now()
      load.attempted.push(id)
      try {
        await publisher.publish({ stream, id, payload: '{}', fields: { seen } })
      } catch (err) {
        const code = (err as { code?: string }).code ?? 'unknown'
        load.rejected[code] = (load.rejected[code] ?? 0) + 1
      }
      await new Promise((r) => setTimeout(r, Math.max(0, everyMs - (Date.now() - started))))
    }
  })()
  load.stop = async () => {
    stopped = true
    await loop
  }
  return load
}

/** One handler run, as ok.mjs recorded it in the shared Redis. */
export interface Handled {
  id: string
  /** When the handler ran (the time part of its record's entry id). */
  at: number
  /** When the entry it handled was written (its entry id's time, on the topology's server). */
  writtenAt: number
}

export async function handledRuns(redis: Redis, seen: string): Promise<Handled[]> {
  return (await readAll(redis, seen)).map(([recordId, f]) => {
    const m = JSON.parse(f.message!) as { id: string; entryId: string }
    return { id: m.id, at: parseInt(recordId, 10), writtenAt: parseInt(m.entryId, 10) }
  })
}

export interface LossReport {
  published: number
  handled: number
  /** Attempted ids never handled. */
  lost: string[]
  /** Handler runs beyond the first per id. */
  duplicates: number
  /**
   * From the fault to the first handler run of an entry written after `servedFrom` (the moment the
   * replacement server took over; the fault itself by default): service restored end to end.
   */
  resumeMs: number | null
  /** The longest pause between two handler runs from the fault on. */
  longestGapMs: number
}

/** Waits (up to `timeoutMs`) until every attempted id was handled, then counts. */
export async function lossReport(
  redis: Redis,
  seen: string,
  attempted: string[],
  faultAt: number,
  { timeoutMs = 20_000, servedFrom = faultAt }: { timeoutMs?: number; servedFrom?: number } = {},
): Promise<LossReport> {
  const deadline = Date.now() + timeoutMs
  let runs = await handledRuns(redis, seen)
  while (Date.now() < deadline && !attempted.every((id) => runs.some((r) => r.id === id))) {
    await new Promise((r) => setTimeout(r, 200))
    runs = await handledRuns(redis, seen)
  }
  const ids = new Set(runs.map((r) => r.id))
  const after = runs.filter((r) => r.writtenAt > servedFrom).map((r) => r.at)
  const times = runs
    .map((r) => r.at)
    .filter((at) => at >= faultAt)
    .sort((a, b) => a - b)
  let longestGapMs = times.length > 0 ? times[0]! - faultAt : 0
  for (let i = 1; i < times.length; i++) longestGapMs = Math.max(longestGapMs, times[i]! - times[i - 1]!)
  return {
    published: attempted.length,
    handled: ids.size,
    lost: attempted.filter((id) => !ids.has(id)),
    duplicates: runs.length - ids.size,
    resumeMs: after.length > 0 ? Math.min(...after) - faultAt : null,
    longestGapMs,
  }
}

/** Resolves once an entry written after `from` was handled: the flow goes through again. */
export async function handledWrittenAfter(redis: Redis, seen: string, from: number, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs
  while (!(await handledRuns(redis, seen)).some((r) => r.writtenAt > from)) {
    if (Date.now() > deadline)
      throw new Error(`nothing written after the fault was handled in ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** Waits until the handler ran `count` times in all. */
export async function handledAtLeast(redis: Redis, seen: string, count: number, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs
  while ((await redis.xlen(seen)) < count) {
    if (Date.now() > deadline) throw new Error(`fewer than ${count} messages handled after ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}
