import assert from 'node:assert/strict'
import path from 'node:path'
import { test, type TestContext } from 'node:test'
import { createActor, toPromise } from 'xstate'
import { deadLetter } from '../../src/actors/deadLetter.js'
import { loadConfig } from '../../src/config.js'
import { Resources } from '../../src/resources.js'
import { createStore } from '../../src/store/index.js'
import { FIXTURES, runCli, writeConfig } from '../support/daemon.js'
import { dead, entry } from '../support/machine.js'
import { holdLock, query, testDatabase, testLogger } from '../support/postgres.js'
import { eventually, pendingCount, REDIS_URL, testRedis, waitForEntries } from '../support/redis.js'
import { startTestRuntime } from '../support/runtime.js'

const handler = (name: string) => path.join(FIXTURES, name)
const codeOf = (fields: Record<string, string>) => (JSON.parse(fields['dlq.error']!) as { code: string }).code

test('entries that cannot be messages are dead-lettered with their code and never reach the handler', async (t) => {
  const { redis, key } = testRedis(t)
  const stream = key('orders')
  const seen = key('seen')
  await startTestRuntime(t, {
    consumers: [
      {
        name: 'orders',
        stream,
        group: 'g',
        handler: handler('ok.mjs'),
        payloadFormat: 'json',
        maxPayloadBytes: 16,
      },
    ],
  })
  await redis.xadd(stream, '*', 'id', 'missing', 'seen', seen)
  await redis.xadd(stream, '*', 'id', 'invalid', 'payload', '{"total":', 'seen', seen)
  await redis.xadd(stream, '*', 'id', 'large', 'payload', '{"note":"0123456789"}', 'seen', seen)
  await redis.xadd(stream, '*', 'id', 'fine', 'payload', '{"total":1}', 'seen', seen)

  const letters = await waitForEntries(redis, `{${stream}}:dlq`, 3)
  assert.deepEqual(
    letters.map((l) => ({ id: l.id, code: codeOf(l), attempts: l['dlq.attempts'] })),
    [
      { id: 'missing', code: 'ACK_ERR_PAYLOAD_MISSING', attempts: '1' },
      { id: 'invalid', code: 'ACK_ERR_PAYLOAD_INVALID', attempts: '1' },
      { id: 'large', code: 'ACK_ERR_PAYLOAD_TOO_LARGE', attempts: '1' },
    ],
  )
  const handled = await waitForEntries(redis, seen, 1)
  assert.deepEqual(
    handled.map((h) => (JSON.parse(h.message!) as { id: string }).id),
    ['fine'],
  )
  await eventually(async () => (await pendingCount(redis, stream, 'g')) === 0, { what: 'the XACKs' })
})

test('a text consumer hands an entry without a payload field to its handler', async (t) => {
  const { redis, key } = testRedis(t)
  const stream = key('events')
  const seen = key('seen')
  await startTestRuntime(t, {
    consumers: [{ name: 'events', stream, group: 'g', handler: handler('ok.mjs') }],
  })
  await redis.xadd(stream, '*', 'event', 'signup', 'seen', seen)
  const [handled] = await waitForEntries(redis, seen, 1)
  const message = JSON.parse(handled!.message!) as Record<string, unknown>
  assert.deepEqual(
    { payload: message.payload, fields: message.fields },
    { payload: null, fields: { event: 'signup', seen } },
  )
})

/** A daemon with the store on whose handler fails every message permanently, on a stream of its own. */
async function permanentFailures(t: TestContext) {
  const { redis, key } = testRedis(t)
  const { url } = await testDatabase(t)
  const stream = key('orders')
  await startTestRuntime(
    t,
    { consumers: [{ name: 'orders', stream, group: 'g', handler: handler('permanent.mjs') }] },
    { databaseUrl: url },
  )
  return { redis, url, stream }
}

test('with the store on, every dead letter also gets a dead_letter row, written before the XACK', async (t) => {
  const { redis, url, stream } = await permanentFailures(t)
  const entryIds = [
    (await redis.xadd(stream, '*', 'id', 'o-1', 'payload', '{"total":1}', 'headers', '{"k":"v"}', 'x', 'y'))!,
    (await redis.xadd(stream, '*', 'id', 'o-2', 'payload', '{"total":2}'))!,
  ]
  const letters = await waitForEntries(redis, `{${stream}}:dlq`, 2)
  await eventually(async () => (await pendingCount(redis, stream, 'g')) === 0, { what: 'the XACKs' })
  const rows = await query(
    url,
    `SELECT message_id, stream, "group", entry_id, payload, headers, fields, error, attempts, consumer,
            to_char(failed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS failed_at, replayed_at
       FROM dead_letter ORDER BY message_id`,
  )
  const error = { name: 'PermanentError', code: 'ACK_ERR_PERMANENT', message: 'order is malformed' }
  assert.deepEqual(rows, [
    {
      message_id: 'o-1',
      stream,
      group: 'g',
      entry_id: entryIds[0],
      payload: '{"total":1}',
      headers: { k: 'v' },
      fields: { x: 'y' },
      error,
      attempts: 1,
      consumer: letters[0]!['dlq.consumer'],
      failed_at: letters[0]!['dlq.failedAt'],
      replayed_at: null,
    },
    {
      message_id: 'o-2',
      stream,
      group: 'g',
      entry_id: entryIds[1],
      payload: '{"total":2}',
      headers: {},
      fields: {},
      error,
      attempts: 1,
      consumer: letters[1]!['dlq.consumer'],
      failed_at: letters[1]!['dlq.failedAt'],
      replayed_at: null,
    },
  ])
})

test('a dead letter is acked only once its row is written: while the INSERT is held, the entry stays pending', async (t) => {
  const { redis, url, stream } = await permanentFailures(t)
  // SHARE on the table holds every INSERT into it until the ROLLBACK below.
  const lock = await holdLock(url, 'LOCK TABLE dead_letter IN SHARE MODE')
  await redis.xadd(stream, '*', 'id', 'o-1', 'payload', '{"total":1}')
  await waitForEntries(redis, `{${stream}}:dlq`, 1)
  await new Promise((r) => setTimeout(r, 300))
  assert.equal(await pendingCount(redis, stream, 'g'), 1, 'not acked while its row is not written')
  await lock.release()
  await eventually(async () => (await pendingCount(redis, stream, 'g')) === 0, { what: 'the XACK' })
  assert.deepEqual(await query(url, 'SELECT message_id FROM dead_letter'), [{ message_id: 'o-1' }])
})

test('when PostgreSQL cannot be reached, the dead-letter stream alone holds the letter and a warning says so', async (t) => {
  const { redis, key } = testRedis(t)
  const stream = key('orders')
  const file = writeConfig(t, {
    consumers: [{ name: 'orders', stream, group: 'g', handler: handler('ok.mjs') }],
  })
  const config = loadConfig({ file, env: { REDIS_URL } })
  const { log, lines } = testLogger('info')
  const unreachable = createStore('postgres://postgres@127.0.0.1:1/nowhere', { logger: log })
  const res = new Resources(config, log, new Map(), unreachable)
  t.after(() => res.close(false))

  const e = entry('1-0', { id: 'o-1' })
  const actor = createActor(deadLetter(res), {
    input: { name: 'orders', stream, group: 'g', consumer: 'c', outcomes: [dead(e)], entries: [e] },
  }).start()
  await toPromise(actor)

  const [letter] = await waitForEntries(redis, `{${stream}}:dlq`, 1)
  assert.deepEqual({ id: letter!.id, code: codeOf(letter!) }, { id: 'o-1', code: 'ACK_ERR_PERMANENT' })
  assert.deepEqual(
    lines.filter((l) => l.level === 40).map((l) => ({ msg: l.msg, ids: l.ids })),
    [{ msg: 'dead letters not recorded in PostgreSQL; the dead-letter stream holds them', ids: ['o-1'] }],
  )
})

test('kill -9 between a dead letter and its XACK: the entry stays pending, and another daemon dead-letters it again and acks it', async (t) => {
  const { redis, key } = testRedis(t)
  const { url } = await testDatabase(t)
  const stream = key('orders')
  const config = writeConfig(t, {
    reclaim: { intervalMs: 250, heartbeatTtlMs: 1_000 },
    consumers: [{ name: 'orders', stream, group: 'g', handler: handler('permanent.mjs') }],
  })
  const env = { DATABASE_URL: url }
  const first = runCli(t, ['start', '--config', config], env)
  await first.waitForLog((l) => l.msg === 'consumer group created')
  // The row's INSERT is held: the daemon has written the letter to the stream and waits before its XACK.
  const lock = await holdLock(url, 'LOCK TABLE dead_letter IN SHARE MODE')
  await redis.xadd(stream, '*', 'id', 'o-1', 'payload', '{}')
  await waitForEntries(redis, `{${stream}}:dlq`, 1)
  await new Promise((r) => setTimeout(r, 200))
  assert.equal(await pendingCount(redis, stream, 'g'), 1)
  first.child.kill('SIGKILL')
  await first.exited
  await lock.release()

  runCli(t, ['start', '--config', config], env)
  await eventually(async () => (await pendingCount(redis, stream, 'g')) === 0, {
    timeoutMs: 15_000,
    what: 'the second daemon to reclaim, dead-letter and ack the entry',
  })
  const letters = await waitForEntries(redis, `{${stream}}:dlq`, 2)
  assert.deepEqual(
    letters.map((l) => l.id),
    ['o-1', 'o-1'],
    'a letter per attempt: the second daemon wrote its own before acking',
  )
})
