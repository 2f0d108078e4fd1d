import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { GROUP, HANDLER, ROOT, Scenario, settings, spawnDaemon, STREAM, until } from './harness.js'
import { recordResult } from './report.js'

const FAMILY = 'bad input'
const JSON_STREAM = 'chaos.json'
const WRONG_STREAM = 'chaos.wrong'
const MB10 = 10 * 1024 * 1024

test('bad entries and a bad reload: each gets its clear error, nothing is lost, the daemon keeps running', async (t) => {
  const consumer = {
    group: GROUP,
    handler: HANDLER,
    blockMs: 500,
    retryBaseMs: 100,
    retryMaxMs: 1_000,
    maxAttempts: 30,
  }
  const s = await Scenario.open(t, {
    family: FAMILY,
    fault:
      'bad entries (no payload, invalid JSON, binary, 10 MB, wrong key types) and a reload naming an unknown handler',
    consumers: [
      { ...consumer, name: 'chaos-json', stream: JSON_STREAM, payloadFormat: 'json' },
      { ...consumer, name: 'chaos-wrong', stream: WRONG_STREAM },
    ],
  })
  // Keys of the wrong type, before the daemon starts: where a consumer's stream should be, and where
  // the json consumer's dead letters go.
  await s.admin.set(WRONG_STREAM, 'not a stream')
  await s.admin.set(`{${JSON_STREAM}}:dlq`, 'not a stream')
  const daemon = await s.startDaemon()
  s.startTraffic({ api: 1, raw: 1, everyMs: 100 })

  /** Message id → what must become of it: completed, or dead-lettered with this code. */
  /** `outcome`: 'done', or the code of the dead letter. */
  const expected = new Map<string, { stream: string; outcome: string; what: string }>()
  const inject = async (
    what: string,
    stream: string,
    outcome: string,
    send: (id: string) => Promise<unknown>,
  ) => {
    const id = s.nextId('bad')
    const at = Date.now()
    await send(id)
    expected.set(id, { stream, outcome, what })
    s.fault(what, at)
    return id
  }
  const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i))

  // The dead letter cannot be written while its key holds a string, so nothing is acked; once the
  // key is fixed it is written and the entry acked.
  const blocked = await inject(
    'dead-letter key of the wrong type',
    JSON_STREAM,
    'ACK_ERR_PAYLOAD_INVALID',
    (id) => s.publishRaw({}, { id, stream: JSON_STREAM, payload: 'not json' }),
  )
  await daemon.waitForLog((l) => l.msg === 'consumer crashed; restarting' && l.consumer === 'chaos-json')
  assert.ok(!(await s.deadLetters({ table: false })).has(blocked), 'not dead-lettered while the key is wrong')
  assert.equal(
    ((await s.admin.xpending(JSON_STREAM, GROUP)) as [number])[0],
    1,
    'the entry stays pending while its dead letter cannot be written',
  )
  await s.admin.del(`{${JSON_STREAM}}:dlq`)
  s.fault('dead-letter key of the wrong type', Date.now())

  for (let i = 0; i < settings.runs; i++) {
    await inject('no payload field (text)', STREAM, 'done', (id) => s.publishRaw({}, { id, payload: null }))
    await inject('no payload field (json)', JSON_STREAM, 'ACK_ERR_PAYLOAD_MISSING', (id) =>
      s.publishRaw({}, { id, stream: JSON_STREAM, payload: null }),
    )
    await inject('invalid JSON (json)', JSON_STREAM, 'ACK_ERR_PAYLOAD_INVALID', (id) =>
      s.publishRaw({}, { id, stream: JSON_STREAM, payload: '{"total": 4' }),
    )
    await inject('invalid JSON (text)', STREAM, 'done', (id) =>
      s.publishRaw({}, { id, payload: '{"total": 4' }),
    )
    await inject('binary payload (text)', STREAM, 'done', (id) => s.publishRaw({}, { id, payload: binary }))
    await inject('binary payload (json)', JSON_STREAM, 'ACK_ERR_PAYLOAD_INVALID', (id) =>
      s.publishRaw({}, { id, stream: JSON_STREAM, payload: binary }),
    )
    await inject('10 MB payload (api)', STREAM, 'ACK_ERR_PAYLOAD_TOO_LARGE', (id) =>
      s.publishApi([{ id, payload: 'x'.repeat(MB10) }]),
    )
    await inject('10 MB payload (raw)', STREAM, 'ACK_ERR_PAYLOAD_TOO_LARGE', (id) =>
      s.publishRaw({}, { id, payload: 'y'.repeat(MB10) }),
    )
    // A NUL character: Redis takes it, a PostgreSQL text column does not.
    const nul = s.nextId('bad')
    const outcome = await s.publishApi([{ id: nul, payload: 'a\u0000b' }])
    const refusal = s.publishes().find((p) => p.id === nul)
    s.notes.push(
      `an API publish of a payload with a NUL character: ${outcome}${refusal?.code ? ` (${refusal.code})` : ''}`,
    )
    if (outcome === 'ok') expected.set(nul, { stream: STREAM, outcome: 'done', what: 'NUL character (api)' })
  }

  // The consumer of the wrong-type key crashed (and was restarted) while the others went on.
  const crashed = await daemon.waitForLog(
    (l) => l.msg === 'consumer crashed; restarting' && l.consumer === 'chaos-wrong',
  )
  assert.match(JSON.stringify(crashed.err), /WRONGTYPE/)
  await s.admin.del(WRONG_STREAM)
  const healedAt = Date.now()
  s.fault('stream key of the wrong type', healedAt - 1, healedAt)
  await inject('after the wrong-type key was fixed', WRONG_STREAM, 'done', (id) =>
    s.publishRaw({}, { id, stream: WRONG_STREAM }),
  )

  // A reload naming a handler module that does not exist is refused; the running config stays.
  const good = readFileSync(s.configFile, 'utf8')
  const bad = JSON.parse(good) as { consumers: { handler: string }[] }
  bad.consumers[0]!.handler = path.join(ROOT, 'test/chaos/handlers/missing.mjs')
  writeFileSync(s.configFile, JSON.stringify(bad))
  daemon.signal('SIGHUP')
  const refused = await daemon.waitForLog((l) => l.msg === 'reload refused; the running config stays')
  writeFileSync(s.configFile, good)
  s.fault('reload with an unknown handler module', Date.now())
  assert.equal(refused.code, 'ACK_ERR_HANDLER_NOT_FOUND')

  await until(
    async () => {
      const done = s.completedIds()
      const dead = await s.deadLetters({ table: false })
      return [...expected].every(([id, e]) => (e.outcome === 'done' ? done.has(id) : dead.has(id)))
    },
    'every bad input settled',
    30_000,
    200,
  )
  const letters = new Map<string, string>()
  for (const stream of [STREAM, JSON_STREAM, WRONG_STREAM]) {
    for (const l of await s.deadLetterEntries(stream)) letters.set(l.id, l.code)
  }
  for (const [id, e] of expected) {
    if (e.outcome !== 'done')
      assert.equal(letters.get(id), e.outcome, `${e.what}: dead-lettered with ${e.outcome}`)
  }
  const sizes = s
    .invocations()
    .filter((r) => r.e === 'start' && expected.get(r.id)?.what === 'binary payload (text)')
    .map((r) => r.size)
  s.notes.push(
    `dead letters: ${[...new Set(letters.values())].sort().join(', ')}`,
    `a binary payload of 256 bytes reached the handler as ${[...new Set(sizes)].join('/')} UTF-8 bytes`,
    `the wrong-type stream key crashed its consumer ${daemon.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('consumer crashed') && l.consumer === 'chaos-wrong').length} times until fixed`,
  )
  await s.finish({ expectDeadLetters: true })
  assert.ok(daemon.alive, 'the same daemon ran throughout')
})

/** Bad start-up configurations: [what, config (or raw text), env, expected stderr]. */
function badConfigs(dir: string): [string, unknown, Record<string, string>, RegExp][] {
  const consumer = { name: 'c', stream: 's', handler: HANDLER }
  const fixtures = path.join(ROOT, 'test/fixtures/handlers')
  return [
    ['concurrency 0', { consumers: [{ ...consumer, concurrency: 0 }] }, {}, /ACK_ERR_CONFIG: .*concurrency/],
    [
      'batchSize "ten"',
      { consumers: [{ ...consumer, batchSize: 'ten' }] },
      {},
      /ACK_ERR_CONFIG: .*batchSize/,
    ],
    ['unknown key', { retires: 3, consumers: [consumer] }, {}, /ACK_ERR_CONFIG: .*retires/],
    [
      'http:// redisUrl',
      { redisUrl: 'http://127.0.0.1:6379', consumers: [consumer] },
      {},
      /ACK_ERR_CONFIG: .*redisUrl/,
    ],
    [
      'REDIS_URL without a host',
      { consumers: [consumer] },
      { REDIS_URL: 'redis://' },
      /ACK_ERR_CONFIG: .*redisUrl/,
    ],
    [
      'SHUTDOWN_TIMEOUT_MS 40000',
      { consumers: [consumer] },
      { SHUTDOWN_TIMEOUT_MS: '40000' },
      /ACK_ERR_CONFIG: .*shutdown\.timeoutMs/,
    ],
    [
      'heartbeat TTL below twice the interval',
      { reclaim: { intervalMs: 1_000, heartbeatTtlMs: 1_500 }, consumers: [consumer] },
      {},
      /ACK_ERR_CONFIG: .*heartbeatTtlMs/,
    ],
    ['no consumers', { consumers: [] }, {}, /ACK_ERR_CONFIG: .*consumer/],
    ['not JSON', '{"consumers": [', {}, /ACK_ERR_CONFIG_FILE/],
    [
      'unknown handler module',
      { consumers: [{ ...consumer, handler: path.join(dir, 'nope.mjs') }] },
      {},
      /ACK_ERR_HANDLER_NOT_FOUND: .*nope\.mjs/,
    ],
    [
      'handler module without a handler',
      { consumers: [{ ...consumer, handler: path.join(fixtures, 'noExport.mjs') }] },
      {},
      /ACK_ERR_HANDLER_INVALID/,
    ],
    [
      'handler module that throws at import',
      { consumers: [{ ...consumer, handler: path.join(fixtures, 'throwsAtImport.mjs') }] },
      {},
      /ACK_ERR_HANDLER_IMPORT: .*missing SECRET_KEY/,
    ],
  ]
}

test('bad config values and unknown handler modules stop start-up with exit 1 and one line naming the problem', async (t) => {
  const started = Date.now()
  const dir = path.join(settings.out, `bad-config-${process.pid}`)
  const { mkdirSync } = await import('node:fs')
  mkdirSync(dir, { recursive: true })
  const cases = badConfigs(dir)
  const outcomes: string[] = []
  // Two at a time: each is a short-lived process that must exit before connecting to anything.
  for (let i = 0; i < cases.length; i += 2) {
    await Promise.all(
      cases.slice(i, i + 2).map(async ([what, config, env, expected], j) => {
        const file = path.join(dir, `config-${i + j}.json`)
        writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config))
        const daemon = spawnDaemon(
          t,
          file,
          // Nothing listens on port 1: a config wrongly accepted fails at its first connection instead.
          { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none', ...env },
          path.join(dir, `daemon-${i + j}.log`),
        )
        const { code } = await daemon.exited
        const lines = daemon.stderr().trim().split('\n')
        outcomes.push(`${what} → exit ${code}`)
        assert.equal(code, 1, `${what}: exit code ${code}; stderr: ${daemon.stderr()}`)
        assert.equal(lines.length, 1, `${what}: one line on stderr, got ${daemon.stderr()}`)
        assert.match(lines[0]!, expected, `${what}: ${lines[0]}`)
      }),
    )
  }
  recordResult({
    family: FAMILY,
    fault: 'bad config values and unknown handler modules at start-up',
    runs: cases.length,
    seed: settings.seed,
    published: { attempted: 0, ok: 0, failed: 0, unknown: 0, api: 0, xadd: 0 },
    completed: 0,
    deadLettered: 0,
    lost: 0,
    lostUnbacked: 0,
    invocations: 0,
    duplicateInvocations: 0,
    duplicateEffects: 0,
    unexpected: 0,
    recoveryMs: [],
    stillConsuming: null,
    probeMs: null,
    notes: [
      `each exited 1 with one coded line on stderr before connecting: ${cases.map(([what]) => what).join(', ')}`,
    ],
    durationMs: Date.now() - started,
    passed: true,
  })
})
