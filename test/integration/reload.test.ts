import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { test } from 'node:test'
import { pathToFileURL } from 'node:url'
import { FIXTURES, runCli, writeConfig } from '../support/daemon.js'
import { eventually, groupInfo, readAll, testRedis } from '../support/redis.js'

const IOREDIS = pathToFileURL(createRequire(import.meta.url).resolve('ioredis')).href

/** A handler that records `<version>:<id>` in the `seen` stream; rewritten in place to change it. */
function writeHandler(file: string, version: string): void {
  writeFileSync(
    file,
    `import ioredis from '${IOREDIS}'
const redis = new ioredis.Redis(process.env.REDIS_URL)
export default async function handle(message) {
  await redis.xadd(message.fields.seen, '*', 'run', '${version}:' + message.id)
}
`,
  )
}

test('SIGHUP applies a new config with messages flowing: nothing lost, nothing run twice', async (t) => {
  const { redis, key } = testRedis(t)
  const orders = key('orders')
  const audit = key('audit')
  const billing = key('billing')
  const seen = key('seen')
  const file = writeConfig(t, {})
  const dir = path.dirname(file)
  const handler = path.join(dir, 'handler.mjs')
  writeHandler(handler, 'v1')
  const consumer = (name: string, stream: string) => ({
    name,
    stream,
    group: 'g',
    handler: './handler.mjs',
    blockMs: 100,
    batchSize: 20,
  })
  writeFileSync(file, JSON.stringify({ consumers: [consumer('orders', orders), consumer('audit', audit)] }))
  const daemon = runCli(t, ['start', '--config', file])
  await daemon.waitForLog((l) => l.msg === 'connected to redis')

  // A steady flow of messages across the reload.
  let sent = 0
  let flowing = true
  const flow = (async () => {
    while (flowing) {
      await redis.xadd(orders, '*', 'id', `o-${sent}`, 'payload', '{}', 'seen', seen)
      sent++
      await new Promise((r) => setTimeout(r, 5))
    }
  })()
  await eventually(async () => (await readAll(redis, seen)).length >= 50, { what: 'messages flowing' })

  writeHandler(handler, 'v2')
  writeFileSync(
    file,
    JSON.stringify({ consumers: [consumer('orders', orders), consumer('billing', billing)] }),
  )
  daemon.child.kill('SIGHUP')
  const reloaded = await daemon.waitForLog((l) => l.msg === 'config reloaded')
  assert.deepEqual(
    {
      added: reloaded.added,
      removed: reloaded.removed,
      changed: reloaded.changed,
      unchanged: reloaded.unchanged,
    },
    { added: ['billing'], removed: ['audit'], changed: ['orders'], unchanged: [] },
  )
  await eventually(async () => (await readAll(redis, seen)).some(([, f]) => f.run!.startsWith('v2:')), {
    what: 'the new handler to run',
  })
  flowing = false
  await flow
  await redis.xadd(billing, '*', 'id', 'b-1', 'payload', '{}', 'seen', seen)
  await redis.xadd(audit, '*', 'id', 'a-1', 'payload', '{}', 'seen', seen)

  await eventually(async () => (await readAll(redis, seen)).length >= sent + 1, {
    timeoutMs: 15_000,
    what: 'all handled',
  })
  await new Promise((r) => setTimeout(r, 500))
  const runs = (await readAll(redis, seen)).map(([, f]) => f.run!)
  const byId = new Map<string, number>()
  for (const r of runs) byId.set(r.slice(3), (byId.get(r.slice(3)) ?? 0) + 1)
  const lost = Array.from({ length: sent }, (_, i) => `o-${i}`).filter((id) => !byId.has(id))
  const twice = [...byId].filter(([, n]) => n > 1).map(([id]) => id)
  assert.deepEqual({ lost, twice }, { lost: [], twice: [] })
  assert.ok(runs.includes('v2:b-1'), 'the added consumer consumes')
  assert.ok(!runs.some((r) => r.endsWith(':a-1')), 'the removed consumer stopped')
  // Every version-1 run precedes every version-2 run: old and new never overlapped.
  assert.ok(
    runs.lastIndexOf(runs.filter((r) => r.startsWith('v1:')).at(-1)!) <
      runs.findIndex((r) => r.startsWith('v2:')),
  )
  assert.equal((await groupInfo(redis, orders, 'g')).pending, 0)

  daemon.child.kill('SIGUSR2')
  await daemon.waitForLog((l) => l.msg === 'actor state' && l.actor === 'consumer-billing')
  daemon.child.kill('SIGTERM')
  assert.equal((await daemon.exited).code, 0)
})

test('SIGHUP removing a consumer with a handler running: the handler finishes and is acked, nothing more is read', async (t) => {
  const { redis, key } = testRedis(t)
  const audit = key('audit')
  const orders = key('orders')
  const seen = key('seen')
  const slow = path.join(FIXTURES, 'slow.mjs')
  const consumer = (name: string, stream: string) => ({
    name,
    stream,
    group: 'g',
    handler: slow,
    batchSize: 1,
    blockMs: 100,
  })
  const file = writeConfig(t, { consumers: [consumer('orders', orders), consumer('audit', audit)] })
  const daemon = runCli(t, ['start', '--config', file])
  for (let i = 0; i < 2; i++) await redis.xadd(audit, '*', 'payload', '{}', 'seen', seen, 'ms', '1500')
  await eventually(async () => (await readAll(redis, seen)).length === 1, { what: 'the handler to start' })

  writeFileSync(file, JSON.stringify({ consumers: [consumer('orders', orders)] }))
  daemon.child.kill('SIGHUP')
  const reloaded = await daemon.waitForLog((l) => l.msg === 'config reloaded')
  assert.deepEqual(reloaded.removed, ['audit'])
  await eventually(async () => (await groupInfo(redis, audit, 'g')).pending === 0, {
    what: 'the removed consumer to finish and ack its batch',
  })
  // Long enough for a read the removed consumer should not make to start its handler.
  await new Promise((r) => setTimeout(r, 500))
  const rows = (await readAll(redis, seen)).map(([, f]) => Object.keys(f)[0])
  assert.deepEqual(
    rows,
    ['started', 'finished'],
    'the running handler finished; the next entry never started',
  )
  const info = await groupInfo(redis, audit, 'g')
  assert.deepEqual(
    { pending: info.pending, read: info['entries-read'], lag: info.lag },
    { pending: 0, read: 1, lag: 1 },
  )
})

test('SIGHUP with an invalid config is refused with one log line and the running config stays', async (t) => {
  const { redis, key } = testRedis(t)
  const orders = key('orders')
  const seen = key('seen')
  const file = writeConfig(t, {})
  const handler = path.join(path.dirname(file), 'handler.mjs')
  writeHandler(handler, 'v1')
  writeFileSync(
    file,
    JSON.stringify({ consumers: [{ name: 'orders', stream: orders, handler: './handler.mjs' }] }),
  )
  const daemon = runCli(t, ['start', '--config', file])
  await daemon.waitForLog((l) => l.msg === 'connected to redis')

  writeFileSync(
    file,
    JSON.stringify({
      consumers: [{ name: 'orders', stream: orders, handler: './handler.mjs', batchSize: 0 }],
    }),
  )
  daemon.child.kill('SIGHUP')
  const refused = await daemon.waitForLog((l) => l.msg === 'reload refused; the running config stays')
  assert.equal(refused.code, 'ACK_ERR_CONFIG')
  assert.match(refused.reason as string, /consumers\[0\]\.batchSize .* got 0/)

  await redis.xadd(orders, '*', 'id', 'still', 'payload', '{}', 'seen', seen)
  await eventually(async () => (await readAll(redis, seen)).length === 1, { what: 'consuming to go on' })
  daemon.child.kill('SIGTERM')
  assert.equal((await daemon.exited).code, 0)
})

test('ackstate reload checks the config, then signals the daemon named by its pid file', async (t) => {
  const { key } = testRedis(t)
  const orders = key('orders')
  const file = writeConfig(t, {})
  const dir = path.dirname(file)
  const pidFile = path.join(dir, 'ackstate.pid')
  writeHandler(path.join(dir, 'handler.mjs'), 'v1')
  const write = (batchSize: number) =>
    writeFileSync(
      file,
      JSON.stringify({
        consumers: [{ name: 'orders', stream: orders, handler: './handler.mjs', batchSize }],
      }),
    )
  write(10)
  const daemon = runCli(t, ['start', '--config', file], { ACKSTATE_PID_FILE: pidFile })
  await daemon.waitForLog((l) => l.msg === 'connected to redis')

  write(-1)
  const refused = runCli(t, ['reload', '--pid-file', pidFile, '--config', file])
  assert.equal((await refused.exited).code, 1)
  assert.match(refused.stderr(), /ACK_ERR_CONFIG: consumers\[0\]\.batchSize/)

  write(20)
  const ok = runCli(t, ['reload', '--pid-file', pidFile, '--config', file])
  assert.equal((await ok.exited).code, 0, ok.stderr())
  const reloaded = await daemon.waitForLog((l) => l.msg === 'config reloaded')
  assert.deepEqual(reloaded.changed, ['orders'])
  assert.equal(
    daemon.logs.filter((l) => l.msg === 'config reloaded').length,
    1,
    'the refused reload sent nothing',
  )
  daemon.child.kill('SIGTERM')
  assert.equal((await daemon.exited).code, 0)
})
