import assert from 'node:assert/strict'
import path from 'node:path'
import { test, type TestContext } from 'node:test'
import { encodeLetter, type DeadLetter, type DlqEntry } from '../../src/dlq/letter.js'
import { FIXTURES, runCli } from '../support/daemon.js'
import { query, testDatabase } from '../support/postgres.js'
import { eventually, pendingCount, readAll, testRedis, waitForEntries } from '../support/redis.js'
import { startTestRuntime } from '../support/runtime.js'

/** Runs `ackstate dlq ARGS`; resolves with the exit code, stdout lines (parsed) and stderr. */
async function dlq(t: TestContext, args: string[], env: NodeJS.ProcessEnv = {}) {
  const cli = runCli(t, ['dlq', ...args], env)
  const { code } = await cli.exited
  return { code, out: cli.logs as unknown[], stderr: cli.stderr() }
}

const letter = (stream: string, id: string): DeadLetter => ({
  id,
  stream,
  group: 'g',
  consumer: 'c-1',
  entryId: `${id}-entry`,
  payload: `{"order":"${id}"}`,
  headers: { 'published-at': '1970-01-01T00:00:00.000Z' },
  fields: { tenant: 't' },
  error: { name: 'PermanentError', code: 'ACK_ERR_PERMANENT', message: `${id} is malformed` },
  attempts: 1,
  failedAt: '1970-01-01T00:00:00.000Z',
})

/** Three letters in `{a}:dlq` at 1 s, 2 s and 3 s after the epoch, one in `{b}:dlq` at 4 s. */
async function seed(t: TestContext) {
  const { redis, key } = testRedis(t)
  const [a, b] = [key('a'), key('b')]
  const letters: DlqEntry[] = []
  for (const [stream, id, at] of [
    [a, 'o-1', 1000],
    [a, 'o-2', 2000],
    [a, 'o-3', 3000],
    [b, 'o-4', 4000],
  ] as const) {
    const l = { ...letter(stream, id), failedAt: new Date(at).toISOString() }
    await redis.xadd(`{${stream}}:dlq`, `${at}-0`, ...encodeLetter(l))
    letters.push({ ...l, dlqEntryId: `${at}-0` })
  }
  return { redis, a, b, letters }
}

test('dlq list selects by stream, id (message or entry id) and time range; --json prints one array', async (t) => {
  const { a, b, letters } = await seed(t)
  const [l1, l2, l3, l4] = letters
  assert.deepEqual(await dlq(t, ['list', '--stream', a, '--json']), {
    code: 0,
    out: [[l1, l2, l3]],
    stderr: '',
  })
  // Piped without --json: one letter per line.
  assert.deepEqual((await dlq(t, ['list', '--stream', b])).out, [l4])
  assert.deepEqual((await dlq(t, ['list', '--stream', a, '--id', 'o-2', '--json'])).out, [[l2]])
  assert.deepEqual((await dlq(t, ['list', '--stream', a, '--id', '3000-0', '--json'])).out, [[l3]])
  const range = ['--since', '1970-01-01T00:00:02Z', '--until', '1970-01-01T00:00:03Z']
  assert.deepEqual((await dlq(t, ['list', '--stream', a, ...range, '--json'])).out, [[l2, l3]])
  assert.deepEqual((await dlq(t, ['list', '--stream', a, '--limit', '1', '--json'])).out, [[l1]])
  const all = (await dlq(t, ['list', '--all', '--json'])).out[0] as DlqEntry[]
  assert.deepEqual(
    all.filter((l) => l.stream === a || l.stream === b),
    letters,
  )
})

test('dlq show prints the whole letter; an id it cannot find is ACK_ERR_DLQ_NOT_FOUND, exit 1', async (t) => {
  const { a, letters } = await seed(t)
  assert.deepEqual(await dlq(t, ['show', '--stream', a, '--id', 'o-1', '--json']), {
    code: 0,
    out: [[letters[0]]],
    stderr: '',
  })
  const missing = await dlq(t, ['show', '--stream', a, '--id', 'o-9'])
  assert.deepEqual(missing, {
    code: 1,
    out: [],
    stderr:
      `ackstate: ACK_ERR_DLQ_NOT_FOUND: No dead letter with id "o-9" in {${a}}:dlq. Run \`ackstate dlq list ` +
      `--stream ${a}\` to see the ids (a message id or a dead-letter entry id).\n`,
  })
})

test('dlq purge deletes what the filter selects, and without a filter only with --yes', async (t) => {
  const { redis, a, b, letters } = await seed(t)
  const refused = await dlq(t, ['purge', '--stream', a])
  assert.equal(refused.code, 1)
  assert.match(refused.stderr, /^ackstate: ACK_ERR_USAGE: dlq purge would delete every dead letter of /)

  const byTime = await dlq(t, ['purge', '--stream', a, '--until', '1970-01-01T00:00:01Z', '--json'])
  assert.deepEqual(byTime.out, [[{ stream: a, dlqEntryId: '1000-0', id: 'o-1', status: 'purged' }]])
  assert.deepEqual(
    (await readAll(redis, `{${a}}:dlq`)).map(([id]) => id),
    ['2000-0', '3000-0'],
  )
  const rest = await dlq(t, ['purge', '--stream', a, '--yes', '--json'])
  assert.deepEqual(rest.out, [
    [
      { stream: a, dlqEntryId: '2000-0', id: 'o-2', status: 'purged' },
      { stream: a, dlqEntryId: '3000-0', id: 'o-3', status: 'purged' },
    ],
  ])
  assert.deepEqual(await readAll(redis, `{${a}}:dlq`), [])
  // The other stream's letters are untouched.
  const left = (await dlq(t, ['list', '--all', '--json'])).out[0] as DlqEntry[]
  assert.deepEqual(
    left.filter((l) => l.stream === a || l.stream === b),
    [letters[3]],
  )
})

test('dlq replay puts a dead letter back with a fresh attempt count, the handler runs it, replayed_at is set', async (t) => {
  const { redis, key } = testRedis(t)
  const { url } = await testDatabase(t)
  const stream = key('orders')
  const [gate, seen] = [key('gate'), key('seen')]
  await startTestRuntime(
    t,
    { consumers: [{ name: 'orders', stream, group: 'g', handler: path.join(FIXTURES, 'gated.mjs') }] },
    { databaseUrl: url },
  )
  const fields = { tenant: 't-1', gate, seen }
  await redis.xadd(stream, '*', 'id', 'o-1', 'payload', '{"total":1}', ...Object.entries(fields).flat())
  await waitForEntries(redis, `{${stream}}:dlq`, 1)
  await eventually(async () => (await pendingCount(redis, stream, 'g')) === 0, { what: 'the XACK' })
  const dlqEntryId = (await readAll(redis, `{${stream}}:dlq`))[0]![0]

  await redis.set(gate, '1')
  const replay = await dlq(t, ['replay', '--stream', stream, '--json'], { DATABASE_URL: url })
  const result = (replay.out as { entryId: string }[][])[0]![0]
  assert.deepEqual(replay, {
    code: 0,
    out: [[{ stream, dlqEntryId, id: 'o-1', status: 'replayed', entryId: result!.entryId }]],
    stderr: '',
  })

  const [handled] = await waitForEntries(redis, seen, 1)
  const message = JSON.parse(handled!.message!) as Record<string, unknown>
  assert.deepEqual(
    {
      id: message.id,
      entryId: message.entryId,
      payload: message.payload,
      fields: message.fields,
      attempt: message.attempt,
    },
    { id: 'o-1', entryId: result!.entryId, payload: '{"total":1}', fields, attempt: 1 },
  )
  await eventually(async () => (await pendingCount(redis, stream, 'g')) === 0, { what: 'the XACK' })
  assert.deepEqual(await readAll(redis, `{${stream}}:dlq`), [])
  const rows = await query<{ replayed: boolean }>(
    url,
    'SELECT message_id, replayed_at IS NOT NULL AS replayed FROM dead_letter',
  )
  assert.deepEqual(rows, [{ message_id: 'o-1', replayed: true }])
})

test('a replay of a message re-sent from the backup starts again at attempt 1, and its backup row is re-armed', async (t) => {
  const { redis, key } = testRedis(t)
  const { url } = await testDatabase(t)
  const stream = key('orders')
  const [gate, seen] = [key('gate'), key('seen')]
  const { logs } = await startTestRuntime(
    t,
    { consumers: [{ name: 'orders', stream, group: 'g', handler: path.join(FIXTURES, 'gated.mjs') }] },
    { databaseUrl: url },
  )
  // The consumer's start-up recovery (its group was missing) is over: a row inserted while it ran
  // could be re-sent as an entry of its own, without the gate and seen fields, and that copy could
  // be the one dead-lettered and replayed.
  await eventually(
    () => logs.some((l) => l.actor === 'consumer-orders' && String(l.to).startsWith('reading')),
    { what: 'the consumer reading' },
  )
  // As the republisher leaves it: a backup row with 3 used-up attempts, and the header carrying them.
  await query(
    url,
    `INSERT INTO redis_message_backup (message_id, stream, payload, status, attempts) VALUES ('o-1', $1, '{}', 'sent', 3)`,
    [stream],
  )
  const headers = JSON.stringify({ 'ackstate-attempts': '3', k: 'v' })
  await redis.xadd(stream, '*', 'id', 'o-1', 'payload', '{}', 'headers', headers, 'gate', gate, 'seen', seen)
  const [dead] = await waitForEntries(redis, `{${stream}}:dlq`, 1)
  assert.equal(dead!['dlq.attempts'], '4')
  const backup = () => query(url, 'SELECT status, attempts FROM redis_message_backup')
  await eventually(async () => (await backup())[0]?.status === 'dead', {
    what: 'the backup row marked dead',
  })

  await redis.set(gate, '1')
  assert.equal((await dlq(t, ['replay', '--stream', stream], { DATABASE_URL: url })).code, 0)
  const [handled] = await waitForEntries(redis, seen, 1)
  const message = JSON.parse(handled!.message!) as Record<string, unknown>
  assert.deepEqual(
    { attempt: message.attempt, headers: message.headers },
    { attempt: 1, headers: { k: 'v' } },
  )
  await eventually(async () => (await backup())[0]?.status === 'acked', { what: 'the backup row acked' })
  assert.deepEqual(await backup(), [{ status: 'acked', attempts: 0 }])
})
