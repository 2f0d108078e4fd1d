import assert from 'node:assert/strict'
import { test } from 'node:test'
import pg from 'pg'
import type { InvocationRecord } from './accounting.js'
import { GROUP, STREAM, Scenario, settings, sleep, until, type Daemon } from './harness.js'

const POINTS = [
  'in a handler',
  'between handler and XACK',
  'between XACK and the backup confirmation',
] as const
type Point = (typeof POINTS)[number]

/** Whether an entry is still in the group's PEL (not yet XACKed). */
async function pending(s: Scenario, entry: string | undefined): Promise<boolean> {
  if (!entry) return false
  const rows = await s.admin.xpending(STREAM, GROUP, entry, entry, 1)
  return rows.length > 0
}

function byLive(s: Scenario): (r: InvocationRecord) => boolean {
  const pids = new Set(s.live().map((d) => d.pid))
  return (r) => pids.has(r.pid)
}

function daemonOf(s: Scenario, pid: number): Daemon {
  return s.live().find((d) => d.pid === pid)!
}

/**
 * Kills (-9) the daemon at `point`; resolves with the kill time and whether it landed there (checked
 * after the fact: the invocation still running, the entry still pending, the backup row still not
 * acked).
 */
async function killAt(s: Scenario, point: Point): Promise<{ at: number; landed: boolean }> {
  const from = s.invocations().length
  const live = byLive(s)
  if (point === 'in a handler') {
    const started = await s.waitForInvocation((r) => r.e === 'start' && live(r), { from })
    const at = await daemonOf(s, started.pid).kill9()
    return { at, landed: !s.invocations().some((r) => r.e === 'done' && r.inv === started.inv) }
  }
  if (point === 'between handler and XACK') {
    // A fast and a slow message in one XADD pipeline land in one read: once the fast one completed,
    // its XACK waits for the slow one, and the kill lands in between.
    const fast = s.nextId('api')
    await s.publishApi([{ id: fast, fields: { ms: '5' } }, { fields: { ms: '500' } }])
    const done = await s.waitForInvocation((r) => r.e === 'done' && r.id === fast && live(r), { from })
    const at = await daemonOf(s, done.pid).kill9()
    return { at, landed: await pending(s, done.entry) }
  }
  // Hold the backup rows published so far: the consumers' confirmation UPDATE (after their XACK) waits
  // on them, so a daemon that completed and XACKed one of them is killed before its confirmation lands.
  const lock = new pg.Client({ connectionString: s.dbUrl })
  lock.on('error', () => {})
  await lock.connect()
  try {
    await lock.query('BEGIN')
    const { rows } = await lock.query<{ message_id: string }>(
      "SELECT message_id FROM redis_message_backup WHERE status IN ('pending', 'sent') FOR UPDATE",
    )
    const held = new Set(rows.map((r) => r.message_id))
    let victim: InvocationRecord | undefined
    await until(
      async () => {
        for (const r of s.invocations().slice(from)) {
          if (r.e === 'done' && held.has(r.id) && live(r) && !(await pending(s, r.entry))) {
            victim = r
            return true
          }
        }
        return false
      },
      'a held message completed and XACKed',
      10_000,
      5,
    )
    const at = await daemonOf(s, victim!.pid).kill9()
    await lock.query('ROLLBACK')
    await sleep(300)
    const [row] = await s.sql<{ status: string }>(
      'SELECT status FROM redis_message_backup WHERE message_id = $1',
      [victim!.id],
    )
    return { at, landed: row?.status !== 'acked' }
  } finally {
    await lock.end().catch(() => {})
  }
}

/** Waits until every ok publish started before `at` is settled (or `timeoutMs` passed). */
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

test('kill -9 of a daemon at random points, in a loop, with a replacement started each time', async (t) => {
  const s = await Scenario.open(t, {
    family: 'daemon',
    fault: 'kill -9 in a loop (in handler, before XACK, before backup confirmation)',
  })
  await s.startDaemon()
  await s.startDaemon()
  // Handlers of one batch take different times, so a completed one waits for its batch's XACK.
  s.startTraffic({ api: 2, raw: 1, fields: () => ({ ms: String(s.rng.int(2, 80)) }) })
  const landed = new Map<Point, [number, number]>()
  for (let i = 0; i < POINTS.length * settings.runs; i++) {
    // The short run covers each point once; longer runs draw them.
    const point = i < POINTS.length ? POINTS[i]! : s.rng.pick(POINTS)
    await sleep(s.rng.int(200, 700))
    const kill = await killAt(s, point)
    s.fault(`kill -9 ${point}`, kill.at)
    const [hit, tries] = landed.get(point) ?? [0, 0]
    landed.set(point, [hit + (kill.landed ? 1 : 0), tries + 1])
    await sleep(s.rng.int(0, 300))
    await s.startDaemon()
    await recovered(s, kill.at)
  }
  s.notes.push(
    `kills that landed where aimed: ${[...landed].map(([p, [hit, tries]]) => `${p} ${hit}/${tries}`).join(', ')}`,
  )
  await s.finish()
})

test('SIGTERM with handlers in flight: they finish and are acked, exit 0, a new daemon goes on', async (t) => {
  const s = await Scenario.open(t, {
    family: 'daemon',
    fault: 'SIGTERM with handlers in flight',
    handlerMs: 150,
  })
  let daemon = await s.startDaemon()
  s.startTraffic({ api: 2, raw: 1, everyMs: 100 })
  let inFlight = 0
  let finished = 0
  for (let i = 0; i < settings.runs; i++) {
    await sleep(s.rng.int(300, 800))
    const from = s.invocations().length
    const pid = daemon.pid
    await s.waitForInvocation((r) => r.e === 'start' && r.pid === pid, { from })
    const at = Date.now()
    const running = s
      .invocations()
      .filter((r) => r.pid === pid && r.e === 'start')
      .filter((r) => !s.invocations().some((d) => d.e === 'done' && d.inv === r.inv))
    daemon.signal('SIGTERM')
    const exit = await daemon.exited
    assert.equal(exit.code, 0, `SIGTERM: exit code ${exit.code} (${daemon.stderr()})`)
    const done = new Set(
      s
        .invocations()
        .filter((r) => r.e === 'done')
        .map((r) => r.inv),
    )
    inFlight += running.length
    finished += running.filter((r) => done.has(r.inv)).length
    // No daemon runs until the replacement is up: the fault lasts until then.
    daemon = await s.startDaemon()
    s.fault('SIGTERM', at, Date.now())
    await recovered(s, at)
  }
  s.notes.push(`handlers in flight at SIGTERM: ${inFlight}, finished before the exit: ${finished}`)
  assert.equal(finished, inFlight, 'every handler in flight at SIGTERM finished before the exit')
  await s.finish()
})

test('SIGSTOP of a daemon past the heartbeat TTL, then SIGCONT: its work is reclaimed, and it consumes again', async (t) => {
  const s = await Scenario.open(t, {
    family: 'daemon',
    fault: 'SIGSTOP past the heartbeat TTL, then SIGCONT',
    handlerMs: 60,
  })
  await s.startDaemon()
  await s.startDaemon()
  s.startTraffic({ api: 2, raw: 1 })
  let victim: Daemon | undefined
  for (let i = 0; i < settings.runs; i++) {
    await sleep(s.rng.int(200, 600))
    const live = byLive(s)
    const started = await s.waitForInvocation((r) => r.e === 'start' && live(r), {
      from: s.invocations().length,
    })
    victim = daemonOf(s, started.pid)
    victim.signal('SIGSTOP')
    const at = Date.now()
    // heartbeatTtlMs 1000 + two reclaim intervals, and a margin.
    await sleep(2_000 + s.rng.int(0, 1_000))
    victim.signal('SIGCONT')
    s.fault('SIGSTOP', at, Date.now())
    await recovered(s, at)
  }
  // Only the daemon that was frozen is left: the probe must be consumed by it.
  for (const d of s.live()) {
    if (d === victim) continue
    d.signal('SIGTERM')
    assert.equal((await d.exited).code, 0)
  }
  await s.finish()
  assert.ok(s.invocations().some((r) => r.e === 'done' && r.pid === victim!.pid && r.id.startsWith('probe')))
})
