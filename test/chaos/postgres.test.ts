import { test } from 'node:test'
import { PG_ADMIN_URL, query } from '../support/postgres.js'
import { Scenario, settings, sleep, until } from './harness.js'
import { recordSkip } from './report.js'
import { OwnCluster } from './servers.js'

const FAMILY = 'postgresql'

async function recovered(s: Scenario, at: number, timeoutMs = 20_000): Promise<void> {
  const before = new Set(
    s
      .publishes()
      .filter((p) => p.t0 < at && p.outcome === 'ok')
      .map((p) => p.id),
  )
  await until(
    async () => (await s.unsettled()).every((id) => !before.has(id)),
    'recovery',
    timeoutMs,
    100,
  ).catch(() =>
    s.notes.push(`not recovered within ${timeoutMs} ms of a fault at ${new Date(at).toISOString()}`),
  )
}

function refusedNote(s: Scenario): void {
  const refused = s.publishes().filter((p) => p.outcome !== 'ok')
  if (refused.length === 0) return
  const codes = [...new Set(refused.map((p) => `${p.via}:${p.code}`))].sort()
  s.notes.push(`publishes refused: ${refused.length} (${codes.join(', ')})`)
}

test('PostgreSQL connections terminated under traffic, repeatedly', async (t) => {
  const s = await Scenario.open(t, {
    family: FAMILY,
    fault: 'PostgreSQL connections terminated (3× in a row)',
  })
  await s.startDaemon()
  s.startTraffic()
  const database = new URL(s.dbUrl).pathname.slice(1)
  for (let i = 0; i < settings.runs; i++) {
    await sleep(s.rng.int(300, 900))
    const at = Date.now()
    let killed = 0
    for (let k = 0; k < 3; k++) {
      const rows = await query<{ killed: boolean }>(
        PG_ADMIN_URL,
        'SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
        [database],
      )
      killed += rows.filter((r) => r.killed).length
      await sleep(s.rng.int(50, 300))
    }
    s.fault('pg_terminate_backend', at, Date.now(), `${killed} backends`)
    await recovered(s, at)
  }
  refusedNote(s)
  await s.finish()
})

test('PostgreSQL stopped and started again (a cluster of the suite own)', async (t) => {
  const fault = 'PostgreSQL stopped and started (own cluster)'
  const cluster = await OwnCluster.create(t)
  if (!(cluster instanceof OwnCluster)) {
    recordSkip(FAMILY, fault, cluster.skip)
    t.skip(cluster.skip)
    return
  }
  const s = await Scenario.open(t, { family: FAMILY, fault, cluster })
  await s.startDaemon()
  s.startTraffic()
  for (let i = 0; i < settings.runs; i++) {
    await sleep(s.rng.int(300, 900))
    const mode = i === 0 ? 'fast' : s.rng.pick(['fast', 'immediate'] as const)
    const at = Date.now()
    cluster.stop(mode)
    await sleep(s.rng.int(500, 1_500))
    await cluster.start()
    s.fault(`pg_ctl stop -m ${mode}, start`, at, Date.now())
    await recovered(s, at)
  }
  refusedNote(s)
  await s.finish()
})
