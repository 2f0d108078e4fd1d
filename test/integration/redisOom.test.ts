import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { Redis } from 'ioredis'
import { FIXTURES } from '../support/daemon.js'
import { eventually, pendingCount } from '../support/redis.js'
import { ownRedis } from '../support/redisServer.js'
import { startTestRuntime } from '../support/runtime.js'

test('Redis out of memory while a batch settles: the consumer waits with its results and acks once memory is freed', async (t) => {
  const own = await ownRedis(t, ['--maxmemory', '8mb', '--maxmemory-policy', 'noeviction'])
  const redis = new Redis(own.url, { maxRetriesPerRequest: 2 })
  t.after(() => redis.quit())
  const dir = mkdtempSync(path.join(tmpdir(), 'ackstate-oom-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const gate = path.join(dir, 'open')
  const { runtime, logs } = await startTestRuntime(
    t,
    {
      consumers: [
        {
          name: 'orders',
          stream: 'orders',
          group: 'g',
          handler: path.join(FIXTURES, 'waitsForFile.mjs'),
          concurrency: 1,
        },
      ],
    },
    { redisUrl: own.url },
  )
  await redis.xadd('orders', '*', 'id', 'm-1', 'payload', '{}', 'file', gate)
  // The group may not exist yet when the entry is written: the consumer creates it from the start.
  const pending = () => pendingCount(redis, 'orders', 'g').catch(() => -1)
  await eventually(async () => (await pending()) === 1, { what: 'the read' })

  // Another tenant fills the memory while the handler runs: ballast until Redis refuses it.
  let n = 0
  await eventually(
    async () => {
      try {
        await redis.set(`ballast:${n++}`, 'x'.repeat(64 * 1024))
        return false
      } catch (err) {
        return /^OOM/.test((err as Error).message)
      }
    },
    { what: 'Redis to refuse writes (OOM)', timeoutMs: 20_000 },
  )
  // A large SET is refused while small writes still fit (Redis counts the SET's own query buffer), and
  // a key that expires frees a little: lower the limit below what is used, so every write is refused.
  const used = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1])
  await redis.config('SET', 'maxmemory', String(used - 256 * 1024))
  writeFileSync(gate, '')
  const refused = (l: Record<string, unknown>) =>
    l.msg === 'redis refused or unreachable; results kept, retrying'
  await eventually(() => logs.some(refused), { what: 'the refused settle' })
  assert.equal(await pending(), 1, 'not acked while Redis is full')

  // The operator frees memory.
  await redis.del(...(await redis.keys('ballast:*')))
  await redis.config('SET', 'maxmemory', '8mb')
  await eventually(async () => (await pending()) === 0, { what: 'the XACK' })
  assert.deepEqual(runtime.actor.getSnapshot().context.restarts, {}, 'no actor crashed')
  assert.deepEqual(
    logs.filter(refused).map((l) => ({ level: l.level, code: (l.err as { code: string }).code })),
    [{ level: 40, code: 'ACK_ERR_REDIS_OUT_OF_MEMORY' }],
    'logged once for the whole outage',
  )
})
