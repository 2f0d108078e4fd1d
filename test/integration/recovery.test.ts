import assert from 'node:assert/strict'
import path from 'node:path'
import { test, type TestContext } from 'node:test'
import { createPublisher } from '../../src/publish.js'
import { recoverStream } from '../../src/recovery/recoverStream.js'
import { FIXTURES, runCli } from '../support/daemon.js'
import { eventually, readAll, testRedis, waitForEntries } from '../support/redis.js'
import { query } from '../support/postgres.js'
import { startTestRuntime } from '../support/runtime.js'
import { migratedStore } from '../support/store.js'

async function setup(t: TestContext) {
  const { redis, key } = testRedis(t)
  const { db, store } = await migratedStore(t)
  const publisher = createPublisher({ redis, store })
  t.after(() => publisher.close())
  return { redis, key, db, store, publisher, stream: key('orders'), seen: key('seen') }
}

test('ackstate recover re-sends what the stream lost, and only that; --dry-run sends nothing', async (t) => {
  const s = await setup(t)
  await s.publisher.publishMany(['a', 'b', 'c'].map((id) => ({ stream: s.stream, id, payload: `"${id}"` })))
  // Redis loses the stream (a restart without persistence), except one entry written again later.
  await s.redis.del(s.stream)
  await s.redis.xadd(s.stream, '*', 'id', 'b', 'payload', '"b"')

  const dry = runCli(t, ['recover', '--stream', s.stream, '--dry-run', '--json'], { DATABASE_URL: s.db.url })
  assert.equal((await dry.exited).code, 0, dry.stderr())
  assert.deepEqual(dry.logs.at(-1), {
    dryRun: true,
    streams: [{ stream: s.stream, checked: 3, missing: 2, resent: 0, ran: true }],
  })
  assert.equal((await readAll(s.redis, s.stream)).length, 1)

  const run = runCli(t, ['recover', '--json'], { DATABASE_URL: s.db.url })
  assert.equal((await run.exited).code, 0, run.stderr())
  assert.deepEqual(run.logs.at(-1), {
    dryRun: false,
    streams: [{ stream: s.stream, checked: 3, missing: 2, resent: 2, ran: true }],
  })
  assert.deepEqual((await readAll(s.redis, s.stream)).map(([, f]) => f.id).sort(), ['a', 'b', 'c'])
  const again = runCli(t, ['recover', '--stream', s.stream], { DATABASE_URL: s.db.url })
  assert.equal((await again.exited).code, 0)
  assert.match(
    again.logs.at(-1)!.raw as string,
    /3 unacked in the backup, 0 missing from the stream, re-sent 0/,
  )
})

test('a daemon that finds its stream gone recreates the group and re-sends the unacked messages itself', async (t) => {
  const s = await setup(t)
  const { logs } = await startTestRuntime(
    t,
    {
      reclaim: { intervalMs: 100, heartbeatTtlMs: 1_000 },
      consumers: [
        {
          name: 'orders',
          stream: s.stream,
          group: 'g',
          handler: path.join(FIXTURES, 'slow.mjs'),
          blockMs: 100,
        },
      ],
    },
    { databaseUrl: s.db.url },
  )
  // Acked before the loss: must not come back.
  await s.publisher.publish({
    stream: s.stream,
    id: 'done',
    payload: '{}',
    fields: { seen: s.seen, ms: '1' },
  })
  await eventually(
    async () =>
      (
        await query<{ status: string }>(
          s.db.url,
          `SELECT status FROM redis_message_backup WHERE message_id = 'done'`,
        )
      )[0]?.status === 'acked',
    { what: 'the first message to be acked' },
  )
  // Published, then lost with the stream before any consumer ran it.
  await s.redis.del(s.stream)
  await s.publisher.publish({
    stream: `${s.stream}`,
    id: 'lost',
    payload: '{}',
    fields: { seen: s.seen, ms: '1' },
  })
  await s.redis.del(s.stream)

  await waitForEntries(s.redis, s.seen, 4, 15_000)
  const finished = (await readAll(s.redis, s.seen)).filter(([, f]) => f.finished).length
  assert.equal(finished, 2, 'the lost message ran once more; the acked one did not')
  assert.ok(
    logs.some(
      (l) =>
        l.msg === 'stream or group was missing; re-sent the backed-up messages that were lost' &&
        l.resent === 1,
    ),
  )
})

test('a publish that lands while recovery runs (row committed, entry sent) is not re-sent', async (t) => {
  const s = await setup(t)
  await s.publisher.publishMany([{ stream: s.stream, id: 'lost', payload: '"lost"' }])
  await s.redis.del(s.stream)
  // The real client, with a publish slipped in right after recovery's first read of the stream:
  // that read cannot hold the new entry, the backup read that follows holds its row.
  let slipped = false
  const racing = new Proxy(s.redis, {
    get(target, prop, receiver) {
      if (prop !== 'xrange') return Reflect.get(target, prop, receiver) as unknown
      return async (...args: Parameters<typeof target.xrange>) => {
        const page = await target.xrange(...args)
        if (!slipped) {
          slipped = true
          await s.publisher.publishMany([{ stream: s.stream, id: 'racing', payload: '"racing"' }])
        }
        return page
      }
    },
  })
  const result = await recoverStream(racing, s.store, s.stream)
  assert.ok(slipped)
  assert.deepEqual(result, { stream: s.stream, checked: 2, missing: 1, resent: 1, ran: true })
  assert.deepEqual((await readAll(s.redis, s.stream)).map(([, f]) => f.id).sort(), ['lost', 'racing'])
})

test('with readers: 2, neither read loop reads a recreated stream before its lost messages are re-sent', async (t) => {
  const s = await setup(t)
  await s.publisher.publishMany(
    ['a', 'b', 'c'].map((id) => ({ stream: s.stream, id, payload: '{}', fields: { seen: s.seen } })),
  )
  // The stream and its group are lost before any consumer ran.
  await s.redis.del(s.stream)
  // What reaches Redis for this stream, in order: reads, and the re-sends (XADD, in a script or not).
  const order: string[] = []
  const monitor = await s.redis.monitor()
  t.after(() => monitor.disconnect())
  monitor.on('monitor', (_time: string, args: string[]) => {
    const command = args[0]?.toUpperCase()
    if (command === 'XADD' && args[1] === s.stream) order.push('XADD')
    if (command === 'XREADGROUP' && args.includes(s.stream)) order.push('XREADGROUP')
  })
  await startTestRuntime(
    t,
    {
      consumers: [
        { name: 'orders', stream: s.stream, group: 'g', handler: path.join(FIXTURES, 'ok.mjs'), readers: 2 },
      ],
    },
    { databaseUrl: s.db.url },
  )

  await waitForEntries(s.redis, s.seen, 3, 15_000)
  const firstRead = order.indexOf('XREADGROUP')
  assert.deepEqual(
    order.slice(0, firstRead),
    ['XADD', 'XADD', 'XADD'],
    'the three re-sends come before any read',
  )
})
