import assert from 'node:assert/strict'
import path from 'node:path'
import { test, type TestContext } from 'node:test'
import { createLogger } from '../../src/log.js'
import { createPublisher } from '../../src/publish.js'
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
import { sentinelTopology } from '../support/sentinel.js'

const skip = haveRedisBinaries() ? false : 'redis-server or redis-cli is not installed'
const ok = path.join(FIXTURES, 'ok.mjs')

/**
 * A master, a replica and three sentinels of the test's own; the daemon runs in-process with the
 * store on (so lost = 0 is provable: every publish is backed up first) and finds the master through
 * the sentinels (REDIS_SENTINELS, as an operator would set it). The handler records each run in the
 * shared Redis, which the failover does not touch.
 */
async function setup(t: TestContext) {
  const topo = await sentinelTopology(t)
  const shared = testRedis(t)
  const { db, store } = await migratedStore(t)
  const publisher = createPublisher({ topology: topo.topology, store, logger: createLogger('silent') })
  t.after(() => publisher.close())
  const seen = shared.key('seen')
  const { logs, runtime } = await startTestRuntime(
    t,
    {
      redis: { timeoutMs: topo.topology.timeoutMs },
      republish: { afterMs: 300, intervalMs: 100 },
      reclaim: { intervalMs: 250, heartbeatTtlMs: 1_000 },
      consumers: [{ name: 'orders', stream: 'orders', group: 'g', handler: ok, blockMs: 500, batchSize: 20 }],
    },
    {
      databaseUrl: db.url,
      env: {
        REDIS_MODE: 'sentinel',
        REDIS_SENTINELS: topo.topology.sentinels.join(','),
        REDIS_MASTER_NAME: topo.topology.masterName,
      },
    },
  )
  const load = steadyLoad(publisher, 'orders', seen)
  await handledAtLeast(shared.redis, seen, 30)
  // Shut the daemon and the publisher down while the topology still runs (the after-hooks run in
  // the order they were registered, the topology's first).
  const stop = async () => {
    runtime.shutdown()
    await runtime.done
    await publisher.close()
  }
  return { topo, seenRedis: shared.redis, seen, load, logs, stop }
}

/** Lets the flow run on the new master for a moment, stops it, and counts. */
async function finish(s: Awaited<ReturnType<typeof setup>>, faultAt: number, servedFrom: number) {
  await handledWrittenAfter(s.seenRedis, s.seen, servedFrom)
  await new Promise((r) => setTimeout(r, 500))
  await s.load.stop()
  return lossReport(s.seenRedis, s.seen, s.load.attempted, faultAt, { servedFrom })
}

function report(t: TestContext, what: string, r: LossReport, load: Load) {
  t.diagnostic(
    `${what}: published ${r.published}, handled ${r.handled}, lost ${r.lost.length}, duplicates ${r.duplicates}, ` +
      `flow through the new master after ${r.resumeMs} ms, longest pause ${r.longestGapMs} ms, ` +
      `publishes refused ${JSON.stringify(load.rejected)}`,
  )
}

const crashes = (logs: Record<string, unknown>[]) => logs.filter((l) => String(l.msg).includes('crashed'))

test(
  'SENTINEL FAILOVER under load: nothing is lost and the consumer follows the new master by itself',
  { skip },
  async (t) => {
    const s = await setup(t)
    const old = await s.topo.master()
    const faultAt = Date.now()
    await s.topo.sentinels[0]!.admin().call('SENTINEL', 'FAILOVER', s.topo.topology.masterName)
    const promoted = await s.topo.waitForNewMaster(old)
    const r = await finish(s, faultAt, Date.now())

    await s.stop()
    report(t, `failover ${old.port} → ${promoted.port}`, r, s.load)
    assert.deepEqual(r.lost, [], 'every published message was handled')
    assert.ok(r.resumeMs !== null && r.resumeMs < 10_000, `resumed within 10 s (${r.resumeMs} ms)`)
    assert.deepEqual(crashes(s.logs), [], 'no actor crashed: nothing needed a restart')
  },
)

test(
  'a frozen master (SIGSTOP) is replaced: the stuck reader is dropped and consuming resumes',
  { skip },
  async (t) => {
    const s = await setup(t)
    const old = await s.topo.master()
    const faultAt = Date.now()
    old.freeze()
    const promoted = await s.topo.waitForNewMaster(old)
    const r = await finish(s, faultAt, Date.now())

    await s.stop()
    report(t, `frozen ${old.port} replaced by ${promoted.port}`, r, s.load)
    assert.deepEqual(r.lost, [], 'every published message was handled')
    assert.ok(r.resumeMs !== null && r.resumeMs < 15_000, `resumed within 15 s (${r.resumeMs} ms)`)
    // Where the freeze caught the consumer decides how it is noticed: blocked in XREADGROUP, the read is
    // dropped past blockMs + timeoutMs and the consumer waits in disconnected; inside a claim or settle
    // on the shared connection, its socket timeout reconnects through Sentinel and ioredis re-sends the
    // command to the new master, so the consumer never leaves its state. Either way it was noticed.
    const states = s.logs.filter((l) => l.actor === 'consumer-orders' && l.msg === 'state changed')
    const waited = states.some((l) => l.to === 'disconnected')
    const dropped = s.logs.some((l) => String(l.msg).startsWith('blocked read got no reply in time'))
    const reconnected = s.logs.some((l) => l.msg === 'redis connection restored')
    assert.ok(
      (waited && dropped) || reconnected,
      `the frozen master was noticed (waited in disconnected: ${waited}, stuck read dropped: ${dropped}, shared connection restored: ${reconnected})`,
    )
    assert.deepEqual(crashes(s.logs), [], 'no actor crashed: nothing needed a restart')
  },
)
