import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, test } from 'node:test'
import { loadConfig } from '../../src/config.js'
import { ConfigError } from '../../src/errors.js'

const dir = mkdtempSync(path.join(tmpdir(), 'ackstate-config-'))
after(() => rmSync(dir, { recursive: true, force: true }))
writeFileSync(path.join(dir, 'handler.mjs'), 'export default async () => {}\n')

const consumer = { name: 'orders', stream: 'orders', handler: './handler.mjs' }

function write(content: unknown, name = `${Math.random().toString(36).slice(2)}.json`): string {
  const file = path.join(dir, name)
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content))
  return file
}

function failure(content: unknown, env: NodeJS.ProcessEnv = {}): { code: string; message: string } {
  try {
    loadConfig({ file: write(content), env })
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`)
    return { code: err.code, message: err.message }
  }
  assert.fail('the config was accepted')
}

test('applies defaults and resolves the handler relative to the config file', () => {
  const config = loadConfig({ file: write({ consumers: [consumer] }), env: {} })
  assert.deepEqual(config.consumers, [
    {
      name: 'orders',
      stream: 'orders',
      group: 'orders',
      handler: path.join(dir, 'handler.mjs'),
      concurrency: 2,
      batchSize: 100,
      readers: 1,
      blockMs: 5000,
      handlerTimeoutMs: 30000,
      maxMemoryMb: 512,
      maxYoungMemoryMb: 12,
      maxAttempts: 5,
      retryBaseMs: 1000,
      retryMaxMs: 60000,
      retryJitter: 0.2,
      dedupeTtlMs: 3600000,
      maxPayloadBytes: 1048576,
      payloadFormat: 'text',
    },
  ])
  assert.deepEqual(
    { redisUrl: config.redisUrl, port: config.port, logLevel: config.logLevel, shutdown: config.shutdown },
    { redisUrl: 'redis://127.0.0.1:6379', port: null, logLevel: 'info', shutdown: { timeoutMs: 25000 } },
  )
})

test('Heroku-style variables override the file', () => {
  const file = write({ redisUrl: 'redis://file:6379', consumers: [consumer] })
  const config = loadConfig({
    file,
    env: {
      REDIS_URL: 'rediss://:pw@cache.example:6380',
      DATABASE_URL: 'postgres://u@db.example:5432/x',
      PORT: '5001',
      LOG_LEVEL: 'debug',
    },
  })
  assert.deepEqual(
    {
      redisUrl: config.redisUrl,
      databaseUrl: config.databaseUrl,
      port: config.port,
      logLevel: config.logLevel,
    },
    {
      redisUrl: 'rediss://:pw@cache.example:6380',
      databaseUrl: 'postgres://u@db.example:5432/x',
      port: 5001,
      logLevel: 'debug',
    },
  )
})

test('ACKSTATE_CONFIG names the file when --config is absent', () => {
  const file = write({ consumers: [consumer] })
  assert.equal(loadConfig({ env: { ACKSTATE_CONFIG: file } }).file, file)
})

test('no config file at all says how to give one', () => {
  assert.throws(() => loadConfig({ env: {} }), {
    code: 'ACK_ERR_CONFIG',
    message: /--config FILE or set ACKSTATE_CONFIG/,
  })
})

test('a missing or malformed file names the file', () => {
  assert.throws(() => loadConfig({ file: path.join(dir, 'nope.json'), env: {} }), {
    code: 'ACK_ERR_CONFIG_FILE',
    message: /nope\.json does not exist/,
  })
  const { code, message } = failure('{ "consumers": [], }')
  assert.equal(code, 'ACK_ERR_CONFIG_FILE')
  assert.match(message, /is not valid JSON/)
})

test('rejects an unknown top-level key', () => {
  assert.match(
    failure({ consumers: [consumer], redisURL: 'redis://x' }).message,
    /'redisURL' not declared in the schema \(remove it, or check its spelling/,
  )
})

test('rejects URLs that ioredis would silently reinterpret', () => {
  for (const bad of ['http://x', '', 'localhost:6379', 'redis://']) {
    const { code, message } = failure({ consumers: [consumer] }, { REDIS_URL: bad })
    assert.equal(code, 'ACK_ERR_CONFIG')
    assert.match(message, /redisUrl:/, `for ${JSON.stringify(bad)}: ${message}`)
    assert.match(message, /redis:\/\/127\.0\.0\.1:6379/)
  }
  assert.match(
    failure({ consumers: [consumer] }, { DATABASE_URL: 'mysql://x/db' }).message,
    /databaseUrl: .*postgres/,
  )
})

test('rejects a shutdown timeout the platform would cut short', () => {
  const { message } = failure({ consumers: [consumer], shutdown: { timeoutMs: 30000 } })
  assert.match(message, /shutdown\.timeoutMs: must be a whole number of ms from 1000 to 29999/)
  assert.match(
    failure({ consumers: [consumer] }, { SHUTDOWN_TIMEOUT_MS: 'soon' }).message,
    /shutdown\.timeoutMs/,
  )
})

test('rejects bad consumer values, naming the key and the file', () => {
  const cases: [unknown, RegExp][] = [
    [
      [{ ...consumer, batchSize: 'abc' }],
      /consumers\[0\]\.batchSize \(entries per read\) must be a whole number from 1 to 10000, got "abc"/,
    ],
    [[{ ...consumer, concurrency: 0 }], /consumers\[0\]\.concurrency .* got 0/],
    [[{ ...consumer, blockMs: 1.5 }], /consumers\[0\]\.blockMs/],
    [
      [{ ...consumer, retryJitter: 1.5 }],
      /retryJitter \(random fraction of each backoff\) must be a number from 0 to 1, got 1\.5/,
    ],
    [
      [{ ...consumer, retryBaseMs: 5000, retryMaxMs: 100 }],
      /retryMaxMs \(100\) must not be below retryBaseMs \(5000\)/,
    ],
    [[{ ...consumer, batchsize: 10 }], /consumers\[0\]\.batchsize is not a consumer key/],
    [
      [{ ...consumer, payloadFormat: 'xml' }],
      /consumers\[0\]\.payloadFormat must be one of text, json, binary, got "xml"/,
    ],
    [
      [{ ...consumer, maxPayloadBytes: 0 }],
      /maxPayloadBytes \(largest payload in bytes\) must be a whole number from 1 to 536870912, got 0/,
    ],
    [
      [{ ...consumer, maxYoungMemoryMb: 2 }],
      /maxYoungMemoryMb \(young-generation limit per worker thread\) must be a whole number from 3 to 1024, got 2/,
    ],
    [[{ ...consumer, stream: '' }], /consumers\[0\]\.stream must be a non-empty string/],
    [[{ ...consumer, stream: '{orders}' }], /must not contain braces/],
    [[consumer, consumer], /consumers\[1\]\.name "orders" is used twice/],
    [[], /must list at least one consumer/],
  ]
  for (const [consumers, pattern] of cases) {
    const { code, message } = failure({ consumers })
    assert.equal(code, 'ACK_ERR_CONFIG')
    assert.match(message, pattern)
    if (Array.isArray(consumers) && consumers.length > 0) assert.match(message, /Fix it in .*\.json\./)
  }
})

test('a missing handler module names the resolved path and what the path is relative to', () => {
  const { code, message } = failure({ consumers: [{ ...consumer, handler: './missing.mjs' }] })
  assert.equal(code, 'ACK_ERR_HANDLER_NOT_FOUND')
  assert.match(
    message,
    new RegExp(`${path.join(dir, 'missing.mjs').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} does not exist`),
  )
  assert.match(message, /relative to/)
})

test('a heartbeat TTL under two reclaim intervals is refused', () => {
  const { message } = failure({ consumers: [consumer], reclaim: { intervalMs: 1000, heartbeatTtlMs: 1500 } })
  assert.match(
    message,
    /reclaim\.heartbeatTtlMs \(1500\) must be at least twice reclaim\.intervalMs \(1000\)/,
  )
})

test('the debug page is off unless ACKSTATE_DEBUG (or debug.enabled) turns it on', () => {
  const enabled = (content: unknown, env: NodeJS.ProcessEnv = {}) =>
    loadConfig({ file: write(content), env }).debug.enabled
  assert.deepEqual(
    [
      enabled({ consumers: [consumer] }),
      enabled({ consumers: [consumer], debug: { enabled: true } }),
      enabled({ consumers: [consumer] }, { ACKSTATE_DEBUG: '1' }),
      enabled({ consumers: [consumer], debug: { enabled: true } }, { ACKSTATE_DEBUG: 'false' }),
    ],
    [false, true, true, false],
  )
  const typo = failure({ consumers: [consumer] }, { ACKSTATE_DEBUG: 'yes' })
  assert.equal(typo.code, 'ACK_ERR_CONFIG')
  assert.match(typo.message, /debug\.enabled: must be true or false/)
})

test('memory.heapGrowingPercent is 50 unless set, from 0 (V8 decides) to 300', () => {
  const percent = (content: unknown) =>
    loadConfig({ file: write(content), env: {} }).memory.heapGrowingPercent
  assert.deepEqual(
    [
      percent({ consumers: [consumer] }),
      percent({ consumers: [consumer], memory: { heapGrowingPercent: 0 } }),
      percent({ consumers: [consumer], memory: { heapGrowingPercent: 300 } }),
    ],
    [50, 0, 300],
  )
  for (const bad of [-1, 301, 1.5, 'lots']) {
    const { code, message } = failure({ consumers: [consumer], memory: { heapGrowingPercent: bad } })
    assert.equal(code, 'ACK_ERR_CONFIG')
    assert.match(message, /memory\.heapGrowingPercent: must be a whole number from 0 to 300/)
  }
})

test('readers: n read loops on one stream, group and handler, named <name>, <name>#2 … <name>#n', () => {
  const config = loadConfig({ file: write({ consumers: [{ ...consumer, readers: 3 }] }), env: {} })
  assert.deepEqual(
    config.consumers.map((c) => ({ name: c.name, stream: c.stream, group: c.group, handler: c.handler })),
    ['orders', 'orders#2', 'orders#3'].map((name) => ({
      name,
      stream: 'orders',
      group: 'orders',
      handler: path.join(dir, 'handler.mjs'),
    })),
  )
  assert.match(
    failure({ consumers: [{ ...consumer, readers: 0 }] }).message,
    /consumers\[0\]\.readers \(read loops, each with a batch in flight\) must be a whole number from 1 to 16, got 0/,
  )
})
