import type { RedisClient } from '../redis/connect.js'
import { pipelineBySlot } from '../redis/pipelineBySlot.js'
import type { Sequelize } from 'sequelize'
import type { Config } from '../config.js'
import { readBackupPendingByStream } from '../metrics/backupStats.js'
import { readStreamStats, toRecord, type StreamTarget } from '../metrics/streams.js'
import { heartbeatKey } from '../redis/keys.js'

/** One Redis consumer of a group: a daemon process (live or dead) that read from it. */
export interface GroupConsumer {
  name: string
  /** Entries it holds in the PEL. */
  pending: number
  /** Time since it last read or claimed. */
  idleMs: number
  /** Its daemon's heartbeat is present: the daemon runs. */
  alive: boolean
  /** The states of that daemon's actors, from its heartbeat (empty when it is not alive). */
  actors: Record<string, string>
}

/** `ackstate status` for one configured consumer. */
export interface ConsumerStatus {
  name: string
  stream: string
  group: string
  length: number
  groupExists: boolean
  lag: number | null
  pending: number
  oldestPendingAgeMs: number | null
  dlqLength: number
  /** Backup rows of this stream not yet confirmed; null when the store is off or did not answer. */
  backupPending: number | null
  groupConsumers: GroupConsumer[]
}

/** The whole report (`--json` prints it as is). */
export interface StatusReport {
  consumers: ConsumerStatus[]
  /** `error` is set when the store is enabled but could not be read. */
  store: { enabled: boolean; error?: string }
}

/**
 * Gathers the report: the same O(1) stream reads as the metrics, plus XINFO CONSUMERS per group (one
 * pipelined round trip), plus one grouped count of pending backup rows when a store is given.
 * Redis failures propagate (the command fails); a store failure is reported inside the result.
 */
export async function buildReport(
  config: Config,
  redis: RedisClient,
  store: { sequelize: Sequelize; describeError: (err: unknown) => string } | null,
): Promise<StatusReport> {
  const targets: StreamTarget[] = config.consumers.map((c) => ({
    consumer: c.name,
    stream: c.stream,
    group: c.group,
  }))
  const [streams, members] = await Promise.all([
    readStreamStats(redis, targets),
    readGroupConsumers(redis, targets),
  ])
  await readHeartbeats(redis, members)
  let backup: Map<string, number> | null = null
  const storeState: StatusReport['store'] = { enabled: store !== null }
  if (store) {
    try {
      backup = await readBackupPendingByStream(store.sequelize, [...new Set(targets.map((t) => t.stream))])
    } catch (err) {
      storeState.error = store.describeError(err)
    }
  }
  return {
    consumers: streams.map((s, i) => ({
      name: s.consumer,
      stream: s.stream,
      group: s.group,
      length: s.length,
      groupExists: s.groupExists,
      lag: s.lag,
      pending: s.pending,
      oldestPendingAgeMs: s.oldestPendingAgeMs,
      dlqLength: s.dlqLength,
      backupPending: backup ? (backup.get(s.stream) ?? 0) : null,
      groupConsumers: members[i]!,
    })),
    store: storeState,
  }
}

/** XINFO CONSUMERS of each target's group; a missing stream or group has none. */
async function readGroupConsumers(redis: RedisClient, targets: StreamTarget[]): Promise<GroupConsumer[][]> {
  // One pipeline, or one per slot on a Cluster.
  const replies = await pipelineBySlot(
    redis,
    targets,
    (t) => t.stream,
    (pipeline, t) => pipeline.xinfo('CONSUMERS', t.stream, t.group),
  )
  return targets.map((_, i) => {
    const [err, reply] = replies[i]?.[0] ?? [null, []]
    if (err || !Array.isArray(reply)) return []
    return reply.map((flat) => {
      const c = toRecord(flat)
      return {
        name: String(c.name),
        pending: Number(c.pending ?? 0),
        idleMs: Number(c.idle ?? 0),
        alive: false,
        actors: {},
      }
    })
  })
}

/** Reads the heartbeat of every daemon seen in the groups: alive or not, and its actors' states. */
async function readHeartbeats(redis: RedisClient, members: GroupConsumer[][]): Promise<void> {
  const all = members.flat()
  if (all.length === 0) return
  const values = await Promise.all(all.map((m) => redis.get(heartbeatKey(m.name)).catch(() => null)))
  all.forEach((m, i) => {
    const raw = values[i]
    if (!raw) return
    m.alive = true
    try {
      const parsed = JSON.parse(raw) as { actors?: Record<string, string> }
      m.actors = parsed.actors ?? {}
    } catch {
      // A heartbeat from an older daemon holds only a time.
    }
  })
}
