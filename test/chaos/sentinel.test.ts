import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { loadConfig } from '../../src/config.js'
import { HANDLER, Scenario, settings, sleep, trace, until } from './harness.js'
import { recordSkip } from './report.js'
import { adminRedis, freePort, SentinelSetup } from './servers.js'

const FAMILY = 'redis'

/** Null when the daemon's config takes a Sentinel topology; else why not. */
function sentinelUnsupported(): string | null {
  const dir = mkdtempSync(path.join(tmpdir(), 'ackstate-chaos-probe-'))
  try {
    const file = path.join(dir, 'config.json')
    writeFileSync(
      file,
      JSON.stringify({
        redis: { mode: 'sentinel', sentinels: ['127.0.0.1:26379'], masterName: 'm' },
        consumers: [{ name: 'c', stream: 's', handler: HANDLER }],
      }),
    )
    loadConfig({ file, env: {} })
    return null
  } catch (err) {
    return `this ackstate has no Sentinel mode: ${(err as Error).message}`
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The daemon's `ackstate_collector_up{source="redis"}` (the last of two scrapes a second apart). */
async function redisCollectorUp(port: number): Promise<string> {
  let value = 'absent'
  for (let i = 0; i < 2; i++) {
    if (i > 0) await sleep(1_000)
    try {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
      value = /^ackstate_collector_up\{source="redis"\} (\S+)$/m.exec(text)?.[1] ?? 'absent'
    } catch (err) {
      value = `unreachable (${(err as Error).message})`
    }
  }
  return value
}

async function recovered(s: Scenario, at: number, timeoutMs = 20_000): Promise<void> {
  // Raw XADDs can be lost in a switch (asynchronous replication): only backed-up messages are awaited.
  const before = new Set(
    s
      .publishes()
      .filter((p) => p.t0 < at && p.outcome === 'ok' && p.backup)
      .map((p) => p.id),
  )
  await until(
    async () => (await s.unsettled({ raw: false })).every((id) => !before.has(id)),
    'recovery',
    timeoutMs,
    100,
  ).catch(() =>
    s.notes.push(`not recovered within ${timeoutMs} ms of a fault at ${new Date(at).toISOString()}`),
  )
}

const VARIANTS = [
  { how: 'SENTINEL FAILOVER', detector: true, todo: undefined },
  { how: 'master kill -9', detector: true, todo: undefined },
  // Publishers that keep writing to the old master until the sentinel demotes it (up to its 10 s INFO
  // period): the demoted master drops those writes, and the daemon's re-diffs over the 30 s after the
  // switch re-send them from the backup.
  { how: 'SENTINEL FAILOVER', detector: false, todo: undefined },
] as const

for (const { how, detector, todo } of VARIANTS) {
  const suffix = detector ? '' : ', publishers without the failover detector'
  test(
    `Sentinel failover (${how}${suffix}) under traffic: nothing lost, the daemon follows the new master`,
    { todo },
    async (t) => {
      const fault = `Sentinel failover (${how}${suffix})`
      const unsupported = sentinelUnsupported()
      if (unsupported) {
        recordSkip(FAMILY, fault, unsupported)
        t.skip(unsupported)
        return
      }
      const s = await Scenario.open(t, { family: FAMILY, fault, sentinel: true, failoverDetector: detector })
      const setup = s.sentinel!
      // With /metrics: its Redis connection is its own, and must follow the failover too.
      const port = await freePort()
      await s.startDaemon({ env: { PORT: String(port) } })
      trace('daemon up')
      s.startTraffic()
      for (let i = 0; i < settings.runs; i++) {
        await sleep(s.rng.int(500, 1_200))
        const old = await setup.masterPort()
        const at = Date.now()
        if (how === 'SENTINEL FAILOVER') {
          const sentinel = adminRedis(setup.sentinel.port)
          await sentinel
            .call('SENTINEL', 'FAILOVER', SentinelSetup.MASTER_NAME)
            .finally(() => sentinel.disconnect())
          await setup.waitForNewMaster(old)
        } else {
          await setup.server(old).kill()
          await setup.waitForNewMaster(old)
          // The old master comes back (empty: no persistence) and the sentinel makes it a replica.
          await setup.server(old).start()
        }
        const healedAt = Date.now()
        trace(`new master after ${healedAt - at} ms`)
        // The next failover needs the old master back as a replica in sync.
        if (i + 1 < settings.runs) await setup.waitForReplica(old)
        trace(`old master a replica again after ${Date.now() - at} ms`)
        s.fault(how, at, healedAt)
        await recovered(s, at)
      }
      s.notes.push(
        `after the failover /metrics says ackstate_collector_up{source="redis"} ${await redisCollectorUp(port)}`,
      )
      const crashes = s.daemons.reduce(
        (n, d) =>
          n + d.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('consumer crashed')).length,
        0,
      )
      if (crashes > 0) s.notes.push(`consumer actor crashed ${crashes} times (restarted by the supervisor)`)
      const recoveries = s.daemons.flatMap((d) =>
        d.logs.filter((l) => typeof l.msg === 'string' && l.msg.includes('re-sent the backed-up messages')),
      )
      const resent = recoveries.reduce((n, l) => n + Number(l.resent ?? 0), 0)
      s.notes.push(`recoveries from the backup: ${recoveries.length} (${resent} messages re-sent)`)
      // A raw XADD the old master acknowledged while the sentinel was switching (before it was demoted,
      // or not yet replicated when it died) is gone: Redis replicates asynchronously, and nothing else
      // has a copy. Reported; backed-up messages must all arrive.
      await s.finish({ allowUnbackedLoss: true, ...(todo ? { todo } : {}) })
    },
  )
}
