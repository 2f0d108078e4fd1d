import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Scenario, settings, sleep, until } from './harness.js'

const FAMILY = 'redis'

/** A consumer slower than the traffic, so a backlog sits in the stream when Redis loses it. */
const BACKLOG = { consumer: { concurrency: 1, batchSize: 4 }, handlerMs: 60 }

/** Waits until every ok publish started before `at` is settled (or `timeoutMs` passed). */
async function recovered(s: Scenario, at: number, { timeoutMs = 20_000, raw = true } = {}): Promise<void> {
  const before = new Set(
    s
      .publishes()
      .filter((p) => p.t0 < at && p.outcome === 'ok' && (raw || p.backup))
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

/** The daemons' recoveries from the backup (a lost group, or a Redis that changed under them). */
function recoveryNote(s: Scenario): void {
  const lines = s.daemons.flatMap((d) =>
    d.logs.filter((l) => typeof l.msg === 'string' && l.msg.includes('re-sent the backed-up messages')),
  )
  const resent = lines.reduce((n, l) => n + Number(l.resent ?? 0), 0)
  s.notes.push(`recoveries from the backup: ${lines.length} (${resent} messages re-sent)`)
}

function crashNote(s: Scenario): void {
  const crashes = s.daemons.reduce(
    (n, d) =>
      n + d.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('consumer crashed')).length,
    0,
  )
  if (crashes > 0) s.notes.push(`consumer actor crashed ${crashes} times (restarted by the supervisor)`)
}

test('Redis kill -9 and restart with AOF everysec: nothing lost', async (t) => {
  const s = await Scenario.open(t, {
    family: FAMILY,
    fault: 'Redis kill -9, restart with AOF everysec',
    redis: { persistence: 'aof-everysec' },
  })
  await s.startDaemon()
  s.startTraffic()
  for (let i = 0; i < settings.runs; i++) {
    await sleep(s.rng.int(500, 1_200))
    const at = Date.now()
    await s.redis.kill()
    await sleep(s.rng.int(200, 1_000))
    await s.redis.start()
    s.fault('redis kill -9 (AOF)', at, Date.now())
    await recovered(s, at)
  }
  crashNote(s)
  await s.finish()
})

test('Redis kill -9 and restart without persistence: the backup brings every backed-up message back', async (t) => {
  const s = await Scenario.open(t, {
    family: FAMILY,
    fault: 'Redis restart without persistence (empty)',
    ...BACKLOG,
  })
  await s.startDaemon()
  s.startTraffic({ api: 4 })
  for (let i = 0; i < settings.runs; i++) {
    await sleep(s.rng.int(500, 1_200))
    const at = Date.now()
    await s.redis.kill()
    await sleep(s.rng.int(200, 800))
    await s.redis.start()
    s.fault('redis restart, empty', at, Date.now())
    await recovered(s, at, { raw: false })
  }
  recoveryNote(s)
  crashNote(s)
  await s.finish({ allowUnbackedLoss: true })
})

test('FLUSHALL under traffic: recovery from the backup', async (t) => {
  const s = await Scenario.open(t, { family: FAMILY, fault: 'FLUSHALL', ...BACKLOG })
  await s.startDaemon()
  s.startTraffic({ api: 4 })
  for (let i = 0; i < settings.runs; i++) {
    await sleep(s.rng.int(500, 1_200))
    const at = Date.now()
    await s.admin.flushall()
    s.fault('FLUSHALL', at)
    await recovered(s, at, { raw: false })
  }
  recoveryNote(s)
  crashNote(s)
  await s.finish({ allowUnbackedLoss: true })
})

test('CLIENT KILL of every connection, repeatedly', async (t) => {
  const s = await Scenario.open(t, { family: FAMILY, fault: 'CLIENT KILL (every client, 5× in a row)' })
  await s.startDaemon()
  s.startTraffic()
  for (let i = 0; i < settings.runs; i++) {
    await sleep(s.rng.int(300, 900))
    const at = Date.now()
    let killed = 0
    for (let k = 0; k < 5; k++) {
      killed += Number(await s.admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes'))
      await sleep(s.rng.int(20, 150))
    }
    s.fault('CLIENT KILL', at, Date.now(), `${killed} connections`)
    await recovered(s, at)
  }
  crashNote(s)
  await s.finish()
})

test('CLIENT PAUSE ALL for 1.5 s', async (t) => {
  const s = await Scenario.open(t, { family: FAMILY, fault: 'CLIENT PAUSE ALL 1.5 s' })
  await s.startDaemon()
  s.startTraffic()
  for (let i = 0; i < settings.runs; i++) {
    await sleep(s.rng.int(300, 900))
    const at = Date.now()
    await s.admin.call('CLIENT', 'PAUSE', '1500', 'ALL')
    s.fault('CLIENT PAUSE', at, at + 1_500)
    await sleep(1_500)
    await recovered(s, at + 1_500)
  }
  crashNote(s)
  await s.finish()
})

test('Redis out of memory under noeviction: publishers get the error, nothing acknowledged is lost', async (t) => {
  const s = await Scenario.open(t, {
    family: FAMILY,
    fault: 'Redis out of memory (maxmemory, noeviction)',
    redis: { extra: ['--maxmemory', '8mb', '--maxmemory-policy', 'noeviction'] },
  })
  await s.startDaemon()
  s.startTraffic()
  for (let i = 0; i < settings.runs; i++) {
    await sleep(s.rng.int(300, 800))
    // Another tenant fills the memory: ballast until Redis refuses it.
    const at = Date.now()
    let n = 0
    await until(
      async () => {
        try {
          await s.admin.set(`ballast:${i}:${n++}`, 'x'.repeat(64 * 1024))
          return false
        } catch (err) {
          return /OOM/.test((err as Error).message)
        }
      },
      'Redis to refuse writes (OOM)',
      20_000,
      0,
    )
    const from = s.publishes().length
    // The tenant keeps what it freed taken: the consumer's acks and trims free a little memory, and
    // the publishes of a fast consumer could otherwise keep slipping under the limit.
    const ballast = async () => {
      await s.admin.set(`ballast:${i}:${n++}`, 'x'.repeat(4 * 1024)).catch(() => {})
    }
    await until(
      async () => {
        if (
          s
            .publishes()
            .slice(from)
            .some((p) => p.outcome !== 'ok')
        )
          return true
        await ballast()
        return false
      },
      'a publish refused for lack of memory',
      10_000,
    )
    await sleep(s.rng.int(500, 1_500))
    // The operator frees memory.
    const keys = await s.admin.keys(`ballast:${i}:*`)
    await s.admin.del(...keys)
    s.fault('OOM', at, Date.now())
    await recovered(s, Date.now())
  }
  const refused = s.publishes().filter((p) => p.outcome !== 'ok')
  const codes = [...new Set(refused.map((p) => `${p.via}:${p.code}`))].sort()
  s.notes.push(`publishes refused while out of memory: ${refused.length} (${codes.join(', ')})`)
  assert.ok(
    refused.every((p) => (p.via === 'api' ? p.code === 'ACK_ERR_REDIS_OUT_OF_MEMORY' : p.code === 'OOM')),
    `refusals carry the OOM error: ${codes.join(', ')}`,
  )
  crashNote(s)
  await s.finish()
})
