import convict from 'convict'
import { describeConfigError, loadConfig, schema } from '../config.js'
import { ConfigError } from '../errors.js'
import { checkRedisTopology, type RedisMode, type RedisTarget } from '../redisConfig.js'

/** Options of loadRedisSettings. */
export interface RedisSettingsOptions {
  /** Config file; falls back to env.ACKSTATE_CONFIG, then to the environment and defaults alone. */
  file?: string
  /** Environment to read (tests pass their own). */
  env?: NodeJS.ProcessEnv
}

/**
 * Where Redis is, for commands that may run without a config file (`ackstate publish`, `dlq`,
 * `recover`) and for createPublisher(): the config file when one is given, else REDIS_URL, REDIS_MODE,
 * REDIS_SENTINELS, REDIS_MASTER_NAME, REDIS_SENTINEL_PASSWORD and REDIS_CLUSTER_NODES, validated
 * like the config's keys.
 */
export function loadRedisSettings({ file, env = process.env }: RedisSettingsOptions = {}): RedisTarget {
  if (file ?? env.ACKSTATE_CONFIG) {
    const { redisUrl, redis } = loadConfig({ file, env })
    return { redisUrl, redis }
  }
  return redisSettingsFromEnv(env)
}

/** The environment's Redis settings alone (a library's publisher never reads a config file). */
export function redisSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): RedisTarget {
  const conf = convict({ redisUrl: schema.redisUrl, redis: schema.redis }, { env, args: [] })
  try {
    conf.validate({ allowed: 'strict' })
    const redis = { ...conf.get('redis'), mode: conf.get('redis.mode') as RedisMode }
    checkRedisTopology(redis, conf.get('redisUrl'))
    return { redisUrl: conf.get('redisUrl'), redis }
  } catch (err) {
    throw new ConfigError('ACK_ERR_CONFIG', `Invalid environment: ${describeConfigError(err)}`, {
      cause: err,
    })
  }
}
