import convict from 'convict'

/**
 * Where Redis runs: one server (REDIS_URL), a master found through Sentinel, or a Cluster. The URL
 * stays the source of credentials, database and TLS in every mode, so a Heroku-style REDIS_URL keeps
 * working when the topology changes; only its host and port are ignored outside standalone.
 */

export const REDIS_MODES = ['standalone', 'sentinel', 'cluster'] as const
export type RedisMode = (typeof REDIS_MODES)[number]

/** The `redis` section of the configuration. */
export interface RedisTopology {
  mode: RedisMode
  /** Sentinel addresses (`host:port`), sentinel mode. */
  sentinels: string[]
  /** The master's name as the sentinels know it (`sentinel monitor <name> …`), sentinel mode. */
  masterName: string
  /** Password of the sentinels themselves (they may have none while the data nodes have one). */
  sentinelPassword: string | null
  /** Startup nodes (`host:port`), cluster mode: any few; the rest are discovered. */
  nodes: string[]
  /**
   * A connection that gets no reply within this many ms while commands wait is treated as dead
   * (a frozen or partitioned server): it is dropped and reopened. A blocked read gets blockMs plus this.
   */
  timeoutMs: number
}

/** What a connection needs: the URL and the topology (a loaded Config has both). */
export interface RedisTarget {
  redisUrl: string
  redis: RedisTopology
}

/** The default topology: standalone on the URL. */
export const STANDALONE: RedisTopology = {
  mode: 'standalone',
  sentinels: [],
  masterName: '',
  sentinelPassword: null,
  nodes: [],
  timeoutMs: 5_000,
}

/** `host:port` (`[::1]:6379` for IPv6) as ioredis wants it; throws naming what is wrong. */
export function parseAddress(text: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^\s:[\]]+)):(\d+)$/.exec(text.trim())
  const port = Number(match?.[3])
  if (!match || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`"${text}" is not host:port (e.g. 10.0.0.5:26379)`)
  }
  return { host: match[1] ?? match[2]!, port }
}

convict.addFormat({
  name: 'redis-addresses',
  validate(value: unknown) {
    if (!Array.isArray(value)) throw new Error('must be a list of host:port, e.g. ["10.0.0.5:26379"]')
    for (const item of value) {
      if (typeof item !== 'string')
        throw new Error(`must be a list of host:port strings, got ${JSON.stringify(item)}`)
      parseAddress(item)
    }
  },
  // Environment variables hold one comma-separated string.
  coerce: (v: string) =>
    v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
})

export const redisSchema = {
  mode: {
    doc: 'standalone (redisUrl), sentinel (redis.sentinels + redis.masterName) or cluster (redis.nodes).',
    format: [...REDIS_MODES],
    default: 'standalone',
    env: 'REDIS_MODE',
  },
  sentinels: {
    doc: 'Sentinel mode: sentinel addresses, host:port (REDIS_SENTINELS: comma-separated).',
    format: 'redis-addresses',
    default: [] as string[],
    env: 'REDIS_SENTINELS',
  },
  masterName: {
    doc: 'Sentinel mode: the name the sentinels monitor the master under.',
    format: String,
    default: '',
    env: 'REDIS_MASTER_NAME',
  },
  sentinelPassword: {
    doc: 'Sentinel mode: password of the sentinels (the data nodes take the one in redisUrl).',
    format: (value: unknown) => {
      if (value !== null && typeof value !== 'string') throw new Error('must be a string, or null for none')
    },
    default: null as string | null,
    env: 'REDIS_SENTINEL_PASSWORD',
    sensitive: true,
  },
  nodes: {
    doc: 'Cluster mode: a few startup nodes, host:port (REDIS_CLUSTER_NODES: comma-separated).',
    format: 'redis-addresses',
    default: [] as string[],
    env: 'REDIS_CLUSTER_NODES',
  },
  timeoutMs: {
    doc: 'A connection without a reply for this long while commands wait is dropped and reopened (a frozen server); a blocked read may take blockMs plus this.',
    format: 'positive-int',
    default: STANDALONE.timeoutMs,
  },
}

/**
 * The checks that span keys: each mode has what it needs and nothing another mode would use, so a
 * half-switched configuration is refused instead of silently connecting to REDIS_URL's host.
 * Throws an Error whose one-line message names the key.
 */
export function checkRedisTopology(t: RedisTopology, redisUrl: string): void {
  const stray = (key: keyof RedisTopology, env: string) => {
    throw new Error(
      `redis.${key} is set but redis.mode is ${t.mode}: set redis.mode (REDIS_MODE) to the mode it belongs to, or remove redis.${key} (${env})`,
    )
  }
  if (t.mode !== 'sentinel' && t.sentinels.length > 0) stray('sentinels', 'REDIS_SENTINELS')
  if (t.mode !== 'sentinel' && t.masterName !== '') stray('masterName', 'REDIS_MASTER_NAME')
  if (t.mode !== 'cluster' && t.nodes.length > 0) stray('nodes', 'REDIS_CLUSTER_NODES')
  if (t.mode === 'sentinel') {
    if (t.sentinels.length === 0) {
      throw new Error(
        'redis.sentinels must list at least one sentinel when redis.mode is sentinel, e.g. REDIS_SENTINELS=10.0.0.5:26379,10.0.0.6:26379',
      )
    }
    if (t.masterName.trim() === '') {
      throw new Error(
        'redis.masterName must be set when redis.mode is sentinel: the name in the sentinels\' "sentinel monitor <name> …" line (REDIS_MASTER_NAME)',
      )
    }
  }
  if (t.mode === 'cluster') {
    if (t.nodes.length === 0) {
      throw new Error(
        'redis.nodes must list at least one node when redis.mode is cluster, e.g. REDIS_CLUSTER_NODES=10.0.0.5:6379,10.0.0.6:6379',
      )
    }
    const db = new URL(redisUrl).pathname.replace(/^\//, '')
    if (db !== '' && db !== '0') {
      throw new Error(
        `redisUrl selects database ${db}, but Redis Cluster has only database 0: remove "/${db}" from REDIS_URL`,
      )
    }
  }
}
