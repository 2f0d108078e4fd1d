import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, test } from 'node:test'
import { loadConfig, printableConfig } from '../../src/config.js'
import { ConfigError } from '../../src/errors.js'
import { redisSettingsFromEnv } from '../../src/redis/settings.js'
import { parseAddress } from '../../src/redisConfig.js'

const dir = mkdtempSync(path.join(tmpdir(), 'ackstate-redis-config-'))
after(() => rmSync(dir, { recursive: true, force: true }))
writeFileSync(path.join(dir, 'handler.mjs'), 'export default async () => {}\n')
const consumers = [{ name: 'orders', stream: 'orders', handler: './handler.mjs' }]

function load(redis: unknown, env: NodeJS.ProcessEnv = {}, extra: Record<string, unknown> = {}) {
  const file = path.join(dir, `${Math.random().toString(36).slice(2)}.json`)
  writeFileSync(file, JSON.stringify({ ...(redis === undefined ? {} : { redis }), ...extra, consumers }))
  return loadConfig({ file, env })
}

/** The one-line message of the ConfigError the config is refused with, without the file name. */
function refusal(redis: unknown, env: NodeJS.ProcessEnv = {}, extra: Record<string, unknown> = {}): string {
  try {
    load(redis, env, extra)
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`)
    assert.equal(err.code, 'ACK_ERR_CONFIG')
    assert.ok(!err.message.includes('\n'), 'one line')
    return err.message.replace(/^Invalid config in \S+: /, '')
  }
  assert.fail('the config was accepted')
}

test('standalone on redisUrl is the default', () => {
  assert.deepEqual(load(undefined).redis, {
    mode: 'standalone',
    sentinels: [],
    masterName: '',
    sentinelPassword: null,
    nodes: [],
    timeoutMs: 5000,
  })
})

test('sentinel and cluster settings come from the file or from Heroku-style variables', () => {
  const fromFile = load({
    mode: 'sentinel',
    sentinels: ['10.0.0.5:26379', '[::1]:26380'],
    masterName: 'main',
  })
  assert.deepEqual(
    { mode: fromFile.redis.mode, sentinels: fromFile.redis.sentinels, masterName: fromFile.redis.masterName },
    { mode: 'sentinel', sentinels: ['10.0.0.5:26379', '[::1]:26380'], masterName: 'main' },
  )
  const fromEnv = load(undefined, {
    REDIS_MODE: 'cluster',
    REDIS_CLUSTER_NODES: ' 10.0.0.5:6379, 10.0.0.6:6379 ,',
  })
  assert.deepEqual(
    { mode: fromEnv.redis.mode, nodes: fromEnv.redis.nodes },
    { mode: 'cluster', nodes: ['10.0.0.5:6379', '10.0.0.6:6379'] },
  )
  const sentinel = load(undefined, {
    REDIS_MODE: 'sentinel',
    REDIS_SENTINELS: 'a:1,b:2',
    REDIS_MASTER_NAME: 'm',
    REDIS_SENTINEL_PASSWORD: 'secret',
  })
  assert.equal(sentinel.redis.sentinelPassword, 'secret')
  assert.equal(
    (printableConfig(sentinel).redis as { sentinelPassword: string }).sentinelPassword,
    '[Sensitive]',
  )
})

test('each mode is refused, naming the key, without what it needs or with what another mode uses', () => {
  assert.match(
    refusal({ mode: 'sentinel', masterName: 'm' }),
    /^redis\.sentinels must list at least one sentinel/,
  )
  assert.match(
    refusal({ mode: 'sentinel', sentinels: ['a:1'] }),
    /^redis\.masterName must be set when redis\.mode is sentinel/,
  )
  assert.match(
    refusal({ mode: 'cluster' }),
    /^redis\.nodes must list at least one node when redis\.mode is cluster/,
  )
  assert.match(refusal({ sentinels: ['a:1'] }), /^redis\.sentinels is set but redis\.mode is standalone/)
  assert.match(
    refusal(undefined, { REDIS_CLUSTER_NODES: 'a:1' }),
    /^redis\.nodes is set but redis\.mode is standalone/,
  )
  assert.match(
    refusal({ mode: 'cluster', nodes: ['a:1'], masterName: 'm' }),
    /^redis\.masterName is set but redis\.mode is cluster/,
  )
  assert.match(
    refusal({ mode: 'cluster', nodes: ['a:1'] }, {}, { redisUrl: 'redis://h:6379/2' }),
    /^redisUrl selects database 2, but Redis Cluster has only database 0/,
  )
  assert.match(refusal({ mode: 'replicated' }), /^redis\.mode: must be one of/)
  assert.match(
    refusal({ mode: 'cluster', nodes: ['10.0.0.5'] }),
    /^redis\.nodes: "10\.0\.0\.5" is not host:port/,
  )
  assert.match(
    refusal(undefined, { REDIS_MODE: 'sentinel', REDIS_SENTINELS: 'a:99999' }),
    /^redis\.sentinels: "a:99999" is not host:port/,
  )
  assert.match(refusal({ timeoutMs: 0 }), /^redis\.timeoutMs: must be a whole number/)
  assert.match(refusal({ sentinelPassword: 7 }), /^redis\.sentinelPassword: must be a string/)
})

test('host:port parsing, IPv6 in brackets', () => {
  assert.deepEqual(parseAddress('redis-1.internal:6379'), { host: 'redis-1.internal', port: 6379 })
  assert.deepEqual(parseAddress('[fd00::5]:26379'), { host: 'fd00::5', port: 26379 })
  for (const bad of ['', 'host', ':6379', 'host:0', 'host:port', 'a b:1', 'fd00::5:1'])
    assert.throws(() => parseAddress(bad), /is not host:port/, bad)
})

test('commands without a config file read the topology from the environment, validated the same way', () => {
  assert.deepEqual(
    redisSettingsFromEnv({
      REDIS_URL: 'rediss://u:p@h:6380',
      REDIS_MODE: 'cluster',
      REDIS_CLUSTER_NODES: 'h:6380',
    }),
    {
      redisUrl: 'rediss://u:p@h:6380',
      redis: {
        mode: 'cluster',
        sentinels: [],
        masterName: '',
        sentinelPassword: null,
        nodes: ['h:6380'],
        timeoutMs: 5000,
      },
    },
  )
  assert.throws(() => redisSettingsFromEnv({ REDIS_MODE: 'sentinel' }), {
    code: 'ACK_ERR_CONFIG',
    message: /^Invalid environment: redis\.sentinels must list at least one sentinel/,
  })
})
