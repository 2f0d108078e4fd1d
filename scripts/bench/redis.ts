import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import { bySlices } from './slices.js'

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
export const GROUP = 'bench'
/** XINFO poll interval: the first and last ack are seen at most this late. */
export const POLL_MS = 10
/** A run that takes longer is broken, not slow: fail instead of eating the time budget. */
export const RUN_TIMEOUT_MS = 120_000

/** XADD pre-encoded field lists, pipelined per chunk. */
export async function xaddAll(
  redis: Redis,
  stream: string,
  entries: string[][],
  chunk = 500,
  callers = 1,
): Promise<void> {
  await bySlices(entries, chunk, callers, async (slice) => {
    const pipeline = redis.pipeline()
    for (const fields of slice) pipeline.xadd(stream, '*', ...fields)
    const results = await pipeline.exec()
    const failed = results?.find(([err]) => err)
    if (!results || failed?.[0]) throw failed?.[0] ?? new Error('no reply from Redis to XADD')
  })
}

export interface GroupState {
  entriesRead: number
  lag: number | null
  pending: number
}

/** The group's progress from XINFO GROUPS, or null while the stream or the group does not exist. */
export async function groupState(redis: Redis, stream: string, group = GROUP): Promise<GroupState | null> {
  let groups: unknown[][]
  try {
    groups = (await redis.xinfo('GROUPS', stream)) as unknown[][]
  } catch (err) {
    if (err instanceof Error && /no such key/i.test(err.message)) return null
    throw err
  }
  for (const flat of groups) {
    const info = new Map<unknown, unknown>()
    for (let i = 0; i + 1 < flat.length; i += 2) info.set(flat[i], flat[i + 1])
    if (info.get('name') !== group) continue
    // Without these fields "drained" can never be seen; fail fast instead of at the run timeout.
    if (!info.has('entries-read') || !info.has('lag'))
      throw new Error('XINFO GROUPS lacks entries-read/lag: needs Redis 7+')
    const lag = info.get('lag')
    return {
      entriesRead: Number(info.get('entries-read') ?? 0),
      lag: lag === null || lag === undefined ? null : Number(lag),
      pending: Number(info.get('pending')),
    }
  }
  return null
}

export const drained = (s: GroupState | null, n: number) =>
  s !== null && s.entriesRead >= n && s.lag === 0 && s.pending === 0

export interface Drain {
  /** When an ack was first seen, and how many were acked by then. */
  firstAck: { at: number; acked: number } | undefined
  /** When the group was seen drained. */
  done: number
}

/** Polls XINFO GROUPS until `n` entries are read and acked; `alive` false aborts (the daemon died). */
export async function waitDrained(
  redis: Redis,
  stream: string,
  n: number,
  { started, alive }: { started: number; alive: () => Promise<string | null> },
): Promise<Drain> {
  let firstAck: Drain['firstAck']
  let state: GroupState | null = null
  while (!drained(state, n)) {
    const dead = await alive()
    if (dead) throw new Error(dead)
    if (performance.now() - started > RUN_TIMEOUT_MS)
      throw new Error(`${stream} did not drain in ${RUN_TIMEOUT_MS} ms`)
    await sleep(POLL_MS)
    state = await groupState(redis, stream)
    const acked = state ? state.entriesRead - state.pending : 0
    if (!firstAck && acked > 0) firstAck = { at: performance.now(), acked }
  }
  return { firstAck, done: performance.now() }
}

/** Waits until the consumer group exists (the daemon started its consumer); `alive` non-null aborts. */
export async function waitForGroup(
  redis: Redis,
  stream: string,
  {
    started,
    alive,
    timeoutMs = 30_000,
  }: { started: number; alive: () => Promise<string | null>; timeoutMs?: number },
): Promise<void> {
  while ((await groupState(redis, stream)) === null) {
    const dead = await alive()
    if (dead) throw new Error(dead)
    if (performance.now() - started > timeoutMs)
      throw new Error(`no consumer group on ${stream} after ${timeoutMs} ms`)
    await sleep(20)
  }
}

/**
 * msgs/s from the first ack to `end`. A run whose first poll already saw every message acked (faster
 * than a poll, or consumed while the fill was still being sent) has no such window: `start` → `end`.
 */
export function steadyRate(n: number, drain: Drain, start: number, end = drain.done): number {
  const first = drain.firstAck
  return first && end > first.at && first.acked < n
    ? ((n - first.acked) * 1000) / (end - first.at)
    : (n * 1000) / (end - start)
}

/**
 * Deletes a stream and the keys the daemon derives from it: dead letters and the groups' dedupe
 * buckets (`{stream}:dedupe:…`, kept up to 1.5 × dedupeTtlMs otherwise).
 */
export async function deleteStream(redis: Redis, stream: string): Promise<void> {
  await redis.del(stream, `{${stream}}:dlq`)
  await unlinkMatching(redis, `{${stream}}:dedupe:*`)
}

/** Unlinks every key matching a SCAN pattern. */
export async function unlinkMatching(redis: Redis, pattern: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 10_000)
    if (keys.length > 0) await redis.unlink(...keys)
    cursor = next
  } while (cursor !== '0')
}
