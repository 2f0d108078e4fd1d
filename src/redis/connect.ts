import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis'
import type { Logger } from '../log.js'
import { parseAddress, STANDALONE, type RedisTarget } from '../redisConfig.js'

export type { Cluster, Redis }

/** A connection of any topology: a Redis (standalone or through Sentinel) or a Cluster. */
export type RedisClient = Redis | Cluster

/** Options of one connection on top of the defaults below. */
export interface ConnectOptions extends RedisOptions {
  /**
   * The connection blocks (XREADGROUP … BLOCK), so silence on it is normal: no socket timeout. Its
   * user bounds each read itself (src/actors/readBatch.ts).
   */
  blocking?: boolean
}

/**
 * The one factory of Redis connections, for every role (commands, a consumer's blocking reader, the
 * publisher, the CLI): standalone on the URL, a master found through Sentinel, or a Cluster. A
 * command waits through a short outage (two retries), then fails with an error that classify() maps
 * to ACK_ERR_REDIS_UNAVAILABLE, while ioredis keeps reconnecting in the background.
 *
 * A frozen or partitioned server keeps the TCP connection open and answers nothing; the socket
 * timeout (`redis.timeoutMs`) turns that into a reconnect, which through Sentinel finds the new
 * master. Sentinel's failover detector moves the connection as soon as the sentinels switch.
 */
export function connectRedis(url: string, role: string, log: Logger, extra?: ConnectOptions): Redis
export function connectRedis(
  target: RedisTarget,
  role: string,
  log: Logger,
  extra?: ConnectOptions,
): RedisClient
export function connectRedis(
  target: string | RedisTarget,
  role: string,
  log: Logger,
  { blocking = false, ...extra }: ConnectOptions = {},
): RedisClient {
  // A hand-made config without the `redis` section (a test's, a library user's) means standalone.
  const { redisUrl, redis: topology = STANDALONE } =
    typeof target === 'string' ? { redisUrl: target, redis: STANDALONE } : target
  const options: RedisOptions = {
    connectionName: `ackstate:${role}`,
    maxRetriesPerRequest: 2,
    retryStrategy: (times) => Math.min(times * 100, 2_000),
    ...(blocking ? {} : { socketTimeout: topology.timeoutMs }),
    ...extra,
  }
  let client: RedisClient
  if (topology.mode === 'cluster') {
    client = new Cluster(topology.nodes.map(parseAddress), clusterOptions(redisUrl, options))
  } else if (topology.mode === 'sentinel') {
    client = new Redis({
      ...credentials(redisUrl),
      sentinels: topology.sentinels.map(parseAddress),
      name: topology.masterName,
      ...(topology.sentinelPassword ? { sentinelPassword: topology.sentinelPassword } : {}),
      failoverDetector: true,
      // ioredis loops over the sentinels inside one connect attempt for as long as this returns a
      // delay, and commands queued meanwhile wait without limit. A few rounds, then the attempt fails:
      // the usual reconnect takes over and maxRetriesPerRequest fails the waiting commands.
      sentinelRetryStrategy: (times: number) => (times <= 3 ? times * 100 : null),
      // The failover detector's own sentinel connections otherwise retry every 60 s forever, even
      // once their connection is gone; a new detector is made on every reconnect anyway.
      sentinelReconnectStrategy: (times: number) => (times <= 5 ? times * 1_000 : null),
      ...options,
    })
  } else {
    client = new Redis(redisUrl, options)
  }
  watch(client, role, log)
  return client
}

/** Reconnection rounds of a Cluster that reaches no node before it ends (see clusterOptions). */
const CLUSTER_ROUNDS = 5

/** User, password, database and TLS from the URL: they hold in every mode. */
function credentials(redisUrl: string): RedisOptions {
  const url = new URL(redisUrl)
  const db = Number(url.pathname.replace(/^\//, '') || 0)
  return {
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    ...(db ? { db } : {}),
    ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
  }
}

/**
 * A Cluster follows MOVED and ASK itself and retries TRYAGAIN and CLUSTERDOWN; past maxRedirections
 * the command fails and the consumer waits in `disconnected`. Node connections get the same socket
 * timeout, so a frozen master is dropped and the slot map refreshed.
 */
function clusterOptions(redisUrl: string, options: RedisOptions): ClusterOptions {
  const { retryStrategy, lazyConnect, ...nodeOptions } = options
  return {
    // While a Cluster reconnects, its commands wait in an offline queue without any limit; with no
    // node reachable they would wait forever. So it gives up after a few rounds: the queue fails
    // (ACK_ERR_REDIS_UNAVAILABLE), the consumers wait in `disconnected`, and whoever owns the
    // connection opens a new one (Resources, the publisher, the metrics).
    clusterRetryStrategy: (times: number) =>
      times <= CLUSTER_ROUNDS ? (retryStrategy?.(times) ?? null) : null,
    ...(lazyConnect === undefined ? {} : { lazyConnect }),
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    retryDelayOnTryAgain: 100,
    maxRedirections: 16,
    redisOptions: { ...credentials(redisUrl), ...nodeOptions },
  }
}

function watch(client: RedisClient, role: string, log: Logger): void {
  let lastError = ''
  client.on('error', (err: Error) => {
    // ioredis emits the same error on every reconnect attempt (Sentinel's with a growing delay in
    // it); log each distinct one once.
    const kind = err.message.replace(/\d+/g, '#')
    if (kind === lastError) return
    lastError = kind
    log.warn({ err, role }, 'redis connection error')
  })
  client.on('ready', () => {
    if (lastError) log.info({ role }, 'redis connection restored')
    lastError = ''
  })
}

/**
 * Closes a connection: QUIT when it is up (replies in flight arrive first), a plain disconnect when
 * it is not — QUIT on a connection that never came up would wait in the offline queue.
 */
export async function closeRedis(redis: RedisClient): Promise<void> {
  if (redis.status !== 'ready') {
    redis.disconnect()
    return
  }
  await redis.quit().catch(() => redis.disconnect())
  // QUIT leaves a Sentinel connection's failover-detector subscriptions open, reconnecting to the
  // sentinels for as long as the process lives; only disconnect() closes them. (Not on a Cluster: its
  // disconnect() after QUIT would leave it "disconnecting", and a late command would wait forever.)
  if (!redis.isCluster) redis.disconnect()
}
