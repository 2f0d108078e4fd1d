import type { RedisClient } from '../redis/connect.js'
import { deadLetterKey } from '../redis/keys.js'
import { pipelineBySlot } from '../redis/pipelineBySlot.js'

/** A configured consumer's stream and group. */
export interface StreamTarget {
  consumer: string
  stream: string
  group: string
}

/** What Redis says about one consumer's stream and group. */
export interface StreamStats extends StreamTarget {
  /** XLEN; 0 when the stream does not exist. */
  length: number
  /** False until the daemon created the group (or when someone destroyed it). */
  groupExists: boolean
  /** Entries not yet delivered to the group; null when Redis cannot tell (no group, or after XDEL/trims). */
  lag: number | null
  /** Entries delivered and not acked (the group's PEL). */
  pending: number
  /** Age of the oldest pending entry from its entry id's time; null when nothing is pending. */
  oldestPendingAgeMs: number | null
  /** XLEN of `{stream}:dlq`. */
  dlqLength: number
}

/**
 * Reads every target's stats in one pipelined round trip of four O(1) commands per target: XLEN,
 * XINFO GROUPS (lag and pending), XPENDING's summary form (smallest pending id) and XLEN of the
 * dead-letter stream (on a Cluster one per slot: a pipeline must stay in one). Nothing here scans a
 * stream or a PEL, so the cost does not grow with a backlog.
 */
export async function readStreamStats(
  redis: RedisClient,
  targets: readonly StreamTarget[],
  now = Date.now(),
): Promise<StreamStats[]> {
  const replies = await pipelineBySlot(
    redis,
    targets,
    (t) => t.stream,
    (pipeline, t) =>
      pipeline
        .xlen(t.stream)
        .xinfo('GROUPS', t.stream)
        .xpending(t.stream, t.group)
        .xlen(deadLetterKey(t.stream)),
  )
  return targets.map((t, i) => {
    const [len, groups, pending, dlq] = replies[i]!
    // A missing stream fails XINFO ("no such key"); a missing group fails XPENDING (NOGROUP).
    // Anything else (a connection error) fails every command, and XLEN tells.
    if (len?.[0]) throw len[0]
    const group = groups?.[0] ? undefined : findGroup(groups?.[1], t.group)
    const oldest = pending?.[0] ? null : oldestPendingId(pending?.[1])
    return {
      ...t,
      length: Number(len?.[1] ?? 0),
      groupExists: group !== undefined,
      lag: group?.lag == null ? null : Number(group.lag),
      pending: group ? Number(group.pending ?? 0) : 0,
      oldestPendingAgeMs: oldest === null ? null : Math.max(0, now - oldest),
      dlqLength: dlq?.[0] ? 0 : Number(dlq?.[1] ?? 0),
    }
  })
}

/** XINFO replies are flat `[key, value, …]` lists (maps under RESP3 without ioredis's legacy mapping). */
export function toRecord(reply: unknown): Record<string, unknown> {
  if (reply instanceof Map) return Object.fromEntries(reply as Map<string, unknown>)
  if (!Array.isArray(reply)) return (reply ?? {}) as Record<string, unknown>
  const out: Record<string, unknown> = {}
  for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = reply[i + 1]
  return out
}

function findGroup(reply: unknown, group: string): Record<string, unknown> | undefined {
  if (!Array.isArray(reply)) return undefined
  return reply.map(toRecord).find((g) => g.name === group)
}

/** XPENDING summary: `[count, smallestId, largestId, [[consumer, count], …]]`; the id's time part. */
function oldestPendingId(reply: unknown): number | null {
  if (!Array.isArray(reply) || Number(reply[0]) === 0 || typeof reply[1] !== 'string') return null
  const ms = parseInt(reply[1], 10)
  return Number.isNaN(ms) ? null : ms
}
