import assert from 'node:assert/strict'
import path from 'node:path'
import { test, type TestContext } from 'node:test'
import type { Redis } from 'ioredis'
import { connectStore, migrate } from '../../src/store/index.js'
import { FIXTURES, runCli, writeConfig } from '../support/daemon.js'
import { query, testDatabase, testLogger } from '../support/postgres.js'
import { testRedis } from '../support/redis.js'
import { startTestRuntime } from '../support/runtime.js'

/**
 * A group as an operator finds it after an incident: `orders` has 4 entries, 2 read by a daemon that
 * never acked them (c-dead), 2 not yet delivered, 1 dead letter; `payments` has no stream nor group yet.
 */
async function incident(t: TestContext, redis: Redis, key: (n: string) => string) {
  const orders = key('orders')
  const payments = key('payments')
  for (let i = 0; i < 4; i++) await redis.xadd(orders, '*', 'id', `o-${i}`, 'payload', '{}')
  await redis.xgroup('CREATE', orders, 'orders', '0')
  await redis.xreadgroup('GROUP', 'orders', 'c-dead', 'COUNT', 2, 'STREAMS', orders, '>')
  await redis.xadd(`{${orders}}:dlq`, '*', 'id', 'o-x', 'dlq.error', '{}')
  const file = writeConfig(t, {
    consumers: [
      { name: 'orders', stream: orders, handler: path.join(FIXTURES, 'ok.mjs') },
      { name: 'payments', stream: payments, handler: path.join(FIXTURES, 'ok.mjs') },
    ],
  })
  return { orders, payments, file }
}

async function run(t: TestContext, args: string[], env: NodeJS.ProcessEnv = {}) {
  const cli = runCli(t, ['status', ...args], env)
  const { code } = await cli.exited
  return { code, stdout: cli.logs, stderr: cli.stderr() }
}

test('status --json reports each consumer: length, lag, pending, oldest age, dead letters, group consumers', async (t) => {
  const { redis, key } = testRedis(t)
  const { orders, payments, file } = await incident(t, redis, key)
  const { code, stdout, stderr } = await run(t, ['--config', file, '--json'])
  assert.deepEqual({ code, stderr, lines: stdout.length }, { code: 0, stderr: '', lines: 1 })
  const report = stdout[0] as {
    consumers: { oldestPendingAgeMs: number | null; groupConsumers: { idleMs: number }[] }[]
  }
  const [o, p] = report.consumers
  assert.ok(o!.oldestPendingAgeMs! >= 0 && o!.oldestPendingAgeMs! < 60_000)
  assert.ok(o!.groupConsumers[0]!.idleMs >= 0 && o!.groupConsumers[0]!.idleMs < 60_000)
  assert.deepEqual(
    {
      ...report,
      consumers: report.consumers.map((c) => ({
        ...c,
        oldestPendingAgeMs: typeof c.oldestPendingAgeMs,
        groupConsumers: c.groupConsumers.map((m) => ({ ...m, idleMs: typeof m.idleMs })),
      })),
    },
    {
      consumers: [
        {
          name: 'orders',
          stream: orders,
          group: 'orders',
          length: 4,
          groupExists: true,
          lag: 2,
          pending: 2,
          oldestPendingAgeMs: 'number',
          dlqLength: 1,
          backupPending: null,
          groupConsumers: [{ name: 'c-dead', pending: 2, idleMs: 'number', alive: false, actors: {} }],
        },
        {
          name: 'payments',
          stream: payments,
          group: 'payments',
          length: 0,
          groupExists: false,
          lag: null,
          pending: 0,
          oldestPendingAgeMs: 'object',
          dlqLength: 0,
          backupPending: null,
          groupConsumers: [],
        },
      ],
      store: { enabled: false },
    },
  )
  assert.equal(p!.oldestPendingAgeMs, null)
})

test('status prints a table: one row per consumer, then the Redis consumers of each group', async (t) => {
  const { redis, key } = testRedis(t)
  const { orders, payments, file } = await incident(t, redis, key)
  const { code, stdout } = await run(t, ['--config', file])
  assert.equal(code, 0)
  // Ages change from run to run: compared as "AGE".
  const lines = stdout.map((l) => (l.raw as string).replace(/\b\d+(\.\d+)?(ms|s)\b/g, 'AGE'))
  const cells = (line: string) => line.trim().split(/\s{2,}/)
  assert.deepEqual(lines.filter((l) => l !== '').map(cells), [
    ['CONSUMER', 'STREAM', 'GROUP', 'LENGTH', 'LAG', 'PENDING', 'OLDEST PENDING', 'DLQ', 'BACKUP PENDING'],
    ['orders', orders, 'orders', '4', '2', '2', 'AGE', '1', '-'],
    ['payments', payments, 'payments (missing)', '0', '-', '0', '-', '0', '-'],
    ['CONSUMER', 'REDIS CONSUMER', 'PENDING', 'IDLE', 'DAEMON', 'ACTOR STATE'],
    ['orders', 'c-dead', '2', 'AGE', 'gone', '-'],
    ['backup: store disabled (store.enabled=false)'],
  ])
})

test('status counts the pending backup rows of each stream when the store is enabled', async (t) => {
  const { redis, key } = testRedis(t)
  const { orders, file } = await incident(t, redis, key)
  const db = await testDatabase(t)
  const sequelize = await connectStore(db.url, { logger: testLogger('info').log, createIfMissing: false })
  t.after(() => sequelize.close())
  await migrate(sequelize, { logger: testLogger('info').log })
  await query(
    db.url,
    `INSERT INTO redis_message_backup (message_id, stream, payload, status)
     VALUES ('a', $1, '{}', 'pending'), ('b', $1, '{}', 'pending'), ('c', $1, '{}', 'acked'), ('d', 'other', '{}', 'pending')`,
    [orders],
  )
  const { code, stdout, stderr } = await run(t, ['--config', file, '--json'], {
    DATABASE_URL: db.url,
    ACKSTATE_STORE_ENABLED: 'true',
  })
  const report = stdout[0] as { consumers: { name: string; backupPending: number | null }[]; store: unknown }
  assert.deepEqual(
    { code, stderr, backup: report.consumers.map((c) => [c.name, c.backupPending]), store: report.store },
    {
      code: 0,
      stderr: '',
      backup: [
        ['orders', 2],
        ['payments', 0],
      ],
      store: { enabled: true },
    },
  )
})

test('status fails with one coded line when Redis cannot be reached, and still shows Redis when PostgreSQL cannot', async (t) => {
  const { redis, key } = testRedis(t)
  const { file } = await incident(t, redis, key)
  const down = await run(t, ['--config', file, '--json'], { REDIS_URL: 'redis://127.0.0.1:1' })
  assert.equal(down.code, 1)
  assert.match(
    down.stderr,
    /^ackstate: ACK_ERR_REDIS_UNAVAILABLE: Reading the streams from redis:\/\/127\.0\.0\.1:1\b.*\n$/,
  )

  const noStore = await run(t, ['--config', file, '--json'], {
    DATABASE_URL: 'postgres://postgres@127.0.0.1:1/ackstate',
    ACKSTATE_STORE_ENABLED: 'true',
  })
  const report = noStore.stdout[0] as {
    consumers: { lag: number; backupPending: null }[]
    store: { error: string }
  }
  assert.equal(noStore.code, 0)
  assert.deepEqual(
    report.consumers.map((c) => [c.lag, c.backupPending]),
    [
      [2, null],
      [null, null],
    ],
  )
  assert.match(
    report.store.error,
    /^ACK_ERR_STORE_UNAVAILABLE: PostgreSQL at postgres:\/\/postgres@127\.0\.0\.1:1\/ackstate refused/,
  )
})

test('status shows a running daemon as alive, with the state of its consumer actor', async (t) => {
  const { redis, key } = testRedis(t)
  const orders = key('orders')
  const { config } = await startTestRuntime(t, {
    consumers: [{ name: 'orders', stream: orders, handler: path.join(FIXTURES, 'ok.mjs'), blockMs: 100 }],
  })
  await redis.xadd(orders, '*', 'payload', '{}')
  const file = writeConfig(t, {
    consumers: [{ name: 'orders', stream: orders, handler: path.join(FIXTURES, 'ok.mjs') }],
  })
  // The heartbeat carries the actors' states; it is renewed every reclaim interval.
  await new Promise((r) => setTimeout(r, config.reclaim.intervalMs + 200))
  const { code, stdout } = await run(t, ['--config', file, '--json'])
  assert.equal(code, 0)
  const [member] = (
    stdout[0] as { consumers: { groupConsumers: { alive: boolean; actors: Record<string, string> }[] }[] }
  ).consumers[0]!.groupConsumers
  assert.equal(member!.alive, true)
  assert.match(member!.actors['consumer-orders']!, /^(reading\.\w+|processing|acking)$/)
  assert.equal(member!.actors.supervisor, 'running')
  assert.match(member!.actors.reclaimer!, /^(beating|scanning|trimming|waiting)$/)
})
