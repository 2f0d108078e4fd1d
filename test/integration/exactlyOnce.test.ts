import assert from 'node:assert/strict'
import path from 'node:path'
import { test, type TestContext } from 'node:test'
import { connectStore, migrate } from '../../src/store/index.js'
import { FIXTURES, runCli, writeConfig } from '../support/daemon.js'
import { query, testDatabase, testLogger } from '../support/postgres.js'
import { eventually, pendingCount, testRedis, waitForEntries } from '../support/redis.js'
import { startTestRuntime } from '../support/runtime.js'

const handler = path.join(FIXTURES, 'effectOnce.mjs')

/** A migrated test database with the handler's `effect` table (no unique key: a repeat would show). */
async function effectDatabase(t: TestContext): Promise<string> {
  const { url } = await testDatabase(t)
  const sequelize = await connectStore(url, { logger: testLogger('info').log, createIfMissing: false })
  try {
    await migrate(sequelize, { logger: testLogger('info').log })
  } finally {
    await sequelize.close()
  }
  await query(url, 'CREATE TABLE effect (message_id text NOT NULL, attempt integer NOT NULL)')
  return url
}

const calls = async (redis: Parameters<typeof waitForEntries>[0], seen: string, count: number) =>
  (await waitForEntries(redis, seen, count)).map((c) => ({ attempt: c.attempt, applied: c.applied }))

test('a message id delivered twice has its effect committed once', async (t) => {
  const { redis, key } = testRedis(t)
  const url = await effectDatabase(t)
  const stream = key('orders')
  const seen = key('seen')
  // Redis deduplication off, so both entries reach the handler: only the helper stands in the way.
  await startTestRuntime(
    t,
    { consumers: [{ name: 'orders', stream, group: 'g', handler, dedupeTtlMs: 0 }] },
    { databaseUrl: url },
  )
  await redis.xadd(stream, '*', 'id', 'o-1', 'payload', '{}', 'seen', seen)
  await redis.xadd(stream, '*', 'id', 'o-1', 'payload', '{}', 'seen', seen)

  assert.deepEqual((await calls(redis, seen, 2)).map((c) => c.applied).sort(), ['false', 'true'])
  await eventually(async () => (await pendingCount(redis, stream, 'g')) === 0, { what: 'the XACKs' })
  assert.deepEqual(await query(url, 'SELECT message_id, attempt FROM effect'), [
    { message_id: 'o-1', attempt: 1 },
  ])
  assert.deepEqual(await query(url, 'SELECT stream, group_name, message_id FROM processed_message'), [
    { stream, group_name: 'g', message_id: 'o-1' },
  ])
})

test('an effect that throws rolls back with its record, so the retry applies it', async (t) => {
  const { redis, key } = testRedis(t)
  const url = await effectDatabase(t)
  const stream = key('orders')
  const seen = key('seen')
  await startTestRuntime(
    t,
    { consumers: [{ name: 'orders', stream, group: 'g', handler, retryBaseMs: 50, retryJitter: 0 }] },
    { databaseUrl: url },
  )
  await redis.xadd(stream, '*', 'id', 'o-1', 'payload', '{}', 'seen', seen, 'failFirst', '1')

  assert.deepEqual(await calls(redis, seen, 1), [{ attempt: '2', applied: 'true' }])
  await eventually(async () => (await pendingCount(redis, stream, 'g')) === 0, { what: 'the XACK' })
  assert.deepEqual(await query(url, 'SELECT message_id, attempt FROM effect'), [
    { message_id: 'o-1', attempt: 2 },
  ])
})

test('kill -9 between the effect commit and the XACK: the re-delivery completes without repeating the effect', async (t) => {
  const { redis, key } = testRedis(t)
  const url = await effectDatabase(t)
  const stream = key('orders')
  const seen = key('seen')
  const config = {
    reclaim: { intervalMs: 200, heartbeatTtlMs: 600 },
    consumers: [{ name: 'orders', stream, group: 'g', handler }],
  }
  const first = runCli(t, ['start', '--config', writeConfig(t, config)], { DATABASE_URL: url })
  await first.waitForLog((l) => l.msg === 'connected to redis')
  await redis.xadd(stream, '*', 'id', 'o-1', 'payload', '{}', 'seen', seen, 'crash', '1')
  assert.deepEqual(await first.exited.then(({ signal }) => signal), 'SIGKILL')
  assert.equal(await pendingCount(redis, stream, 'g'), 1, 'the dead daemon left the entry pending')

  // A second daemon reclaims the dead one's entry once its heartbeat expired.
  await startTestRuntime(t, config, { databaseUrl: url })
  assert.deepEqual(await calls(redis, seen, 2), [
    { attempt: '1', applied: 'true' },
    { attempt: '2', applied: 'false' },
  ])
  await eventually(async () => (await pendingCount(redis, stream, 'g')) === 0, { what: 'the XACK' })
  assert.deepEqual(await query(url, 'SELECT message_id, attempt FROM effect'), [
    { message_id: 'o-1', attempt: 1 },
  ])
})
