import assert from 'node:assert/strict'
import path from 'node:path'
import { test, type TestContext } from 'node:test'
import { createLogger } from '../../src/log.js'
import { createPublisher } from '../../src/publish.js'
import { keySets } from '../../src/redis/slotCheck.js'
import { keySlot } from '../../src/redis/slots.js'
import { clusterTopology } from '../support/cluster.js'
import { FIXTURES } from '../support/daemon.js'
import {
  handledAtLeast,
  handledWrittenAfter,
  lossReport,
  steadyLoad,
  type Load,
  type LossReport,
} from '../support/failoverLoad.js'
import { testRedis } from '../support/redis.js'
import { haveRedisBinaries } from '../support/redisProcess.js'
import { startTestRuntime } from '../support/runtime.js'
import { migratedStore } from '../support/store.js'

const skip = haveRedisBinaries() ? false : 'redis-server or redis-cli is not installed'
const ok = path.join(FIXTURES, 'ok.mjs')
const STREAM = 'orders'

/**
 * Three masters of the test's own; the daemon runs in-process on them (the `redis` section in its
 * config file) with the store on, so lost = 0 is provable. The handler records each run in the
 * shared Redis, outside the cluster under test.
 */
async function setup(t: TestContext) {
  const cluster = await clusterTopology(t)
  const shared = testRedis(t)
  const { db, store } = await migratedStore(t)
  const publisher = createPublisher({ topology: cluster.topology, store, logger: createLogger('silent') })
  t.after(() => publisher.close())
  const seen = shared.key('seen')
  const { logs, runtime } = await startTestRuntime(
    t,
    {
      redis: cluster.topology,
      republish: { afterMs: 300, intervalMs: 100 },
      reclaim: { intervalMs: 250, heartbeatTtlMs: 1_000 },
      consumers: [{ name: 'orders', stream: STREAM, group: 'g', handler: ok, blockMs: 500, batchSize: 20 }],
    },
    { databaseUrl: db.url },
  )
  // Shut the daemon and the publisher down while the topology still runs (the after-hooks run in
  // the order they were registered, the topology's first).
  const stop = async () => {
    runtime.shutdown()
    await runtime.done
    await publisher.close()
  }
  return { cluster, seenRedis: shared.redis, seen, publisher, logs, stop }
}

async function finish(s: Awaited<ReturnType<typeof setup>>, load: Load, faultAt: number, servedFrom: number) {
  await handledWrittenAfter(s.seenRedis, s.seen, servedFrom)
  await new Promise((r) => setTimeout(r, 500))
  await load.stop()
  return lossReport(s.seenRedis, s.seen, load.attempted, faultAt, { servedFrom })
}

function report(t: TestContext, what: string, r: LossReport, load: Load) {
  t.diagnostic(
    `${what}: published ${r.published}, handled ${r.handled}, lost ${r.lost.length}, duplicates ${r.duplicates}, ` +
      `flow restored ${r.resumeMs} ms after the fault, longest pause ${r.longestGapMs} ms, ` +
      `publishes refused ${JSON.stringify(load.rejected)}`,
  )
}

const crashes = (logs: Record<string, unknown>[]) => logs.filter((l) => String(l.msg).includes('crashed'))

test(
  'kill -9 the master that owns the stream, restart it empty: the backup re-sends what it held and consuming resumes',
  { skip },
  async (t) => {
    const s = await setup(t)
    const load = steadyLoad(s.publisher, STREAM, s.seen)
    await handledAtLeast(s.seenRedis, s.seen, 30)
    const owner = await s.cluster.ownerOf(keySlot(STREAM))
    const faultAt = Date.now()
    await owner.kill()
    // Past cluster-node-timeout: the others mark it failed and the cluster stops serving.
    await new Promise((r) => setTimeout(r, 2_000))
    await owner.start()
    await s.cluster.waitForOk()
    const r = await finish(s, load, faultAt, Date.now())

    await s.stop()
    report(t, `master ${owner.port} killed and restarted`, r, load)
    assert.deepEqual(r.lost, [], 'every published message was handled')
    assert.ok(r.resumeMs !== null && r.resumeMs < 15_000, `resumed within 15 s (${r.resumeMs} ms)`)
    // Whether the consumer first waited in `disconnected` depends on whether ioredis's own retries
    // outlasted the outage; either way it found the group gone and recreated it.
    assert.ok(
      s.logs.some((l) => l.msg === 'consumer group created' && (l.time as number) > faultAt),
      'the consumer recreated its group on the emptied master',
    )
    assert.deepEqual(crashes(s.logs), [], 'no actor crashed: nothing needed a restart')
  },
)

test(
  "move the stream's slot to another master under load: nothing lost, consuming goes on",
  { skip },
  async (t) => {
    const s = await setup(t)
    const load = steadyLoad(s.publisher, STREAM, s.seen)
    await handledAtLeast(s.seenRedis, s.seen, 30)
    const slot = keySlot(STREAM)
    const owner = await s.cluster.ownerOf(slot)
    const target = s.cluster.masters.find((m) => m !== owner)!
    const faultAt = Date.now()
    await s.cluster.moveSlot(slot, target)
    const r = await finish(s, load, faultAt, Date.now())

    await s.stop()
    report(t, `slot ${slot} moved ${owner.port} → ${target.port}`, r, load)
    assert.equal((await s.cluster.ownerOf(slot)).port, target.port)
    assert.deepEqual(r.lost, [], 'every published message was handled')
    assert.deepEqual(crashes(s.logs), [], 'no actor crashed: nothing needed a restart')
  },
)

test(
  'slots match CLUSTER KEYSLOT, and publishMany across slots is one pipeline per slot',
  { skip },
  async (t) => {
    const cluster = await clusterTopology(t)
    const admin = cluster.masters[0]!.admin()
    for (const stream of [STREAM, 'a', 'payments:eu', 'ü-stream']) {
      for (const key of Object.values(keySets(stream, 'g')).flat())
        assert.equal(keySlot(key), Number(await admin.call('CLUSTER', 'KEYSLOT', key)), key)
    }
    const publisher = createPublisher({ topology: cluster.topology, logger: createLogger('silent') })
    t.after(() => publisher.close())
    const streams = ['a', 'b', 'c', 'd', 'e']
    assert.ok(new Set(streams.map(keySlot)).size > 1, 'the streams span several slots')
    const results = await publisher.publishMany(streams.map((stream) => ({ stream, payload: stream })))
    assert.deepEqual(
      results.map((r) => r.stream),
      streams,
    )
    assert.ok(results.every((r) => typeof r.entryId === 'string'))
  },
)
