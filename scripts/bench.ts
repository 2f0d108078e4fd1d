/**
 * Throughput benchmark: the whole daemon against the raw ceiling, on pre-filled streams.
 *
 *   npm run bench -- [--runs N] [--messages N] [--json FILE] [--cpu-prof DIR]
 *
 * - daemon: `node dist/src/cli.js start` as a child process with a no-op handler (batchSize 500,
 *   concurrency 2); progress is watched from outside with XINFO GROUPS.
 * - raw: a bare in-process loop XREADGROUP (COUNT 500) → one Piscina task (2 threads) → XACK.
 *
 * Runs alternate daemon/raw so that machine noise hits both. Two rates are reported for each:
 * "steady" counts from the first ack to the last (start-up excluded; the ratio uses it) and "wall"
 * counts from the start (daemon: spawn of the process; raw: creation of the pool) to the last ack.
 */
import { spawn, spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { Piscina } from 'piscina'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const NOOP_HANDLER = path.join(ROOT, 'scripts/bench/noop.mjs')
const RAW_WORKER = path.join(ROOT, 'scripts/bench/rawWorker.mjs')
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

const GROUP = 'bench'
const BATCH_SIZE = 500
const THREADS = 2
const BLOCK_MS = 100
const FILL_CHUNK = 1_000
/** XINFO poll interval: the daemon's first and last ack are seen at most this late. */
const POLL_MS = 10
/** A run that takes longer is broken, not slow: fail instead of eating the time budget. */
const RUN_TIMEOUT_MS = 120_000

interface Options {
  runs: number
  messages: number
  json: string | undefined
  cpuProf: string | undefined
}

interface Sample {
  /** msgs/s from the first ack to the last. */
  steady: number
  /** msgs/s from the start to the last ack. */
  wall: number
  /** ms from the start to the first ack. */
  startupMs: number
}

interface Summary {
  median: number
  min: number
  max: number
  samples: number[]
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      messages: { type: 'string', default: '100000' },
      json: { type: 'string' },
      'cpu-prof': { type: 'string' },
    },
    strict: true,
  })
  const positive = (name: string, raw: string) => {
    const n = Number(raw)
    if (!Number.isInteger(n) || n < 1)
      throw new Error(`--${name} must be a positive whole number, got "${raw}"`)
    return n
  }
  return {
    runs: positive('runs', values.runs),
    messages: positive('messages', values.messages),
    json: values.json,
    cpuProf: values['cpu-prof'],
  }
}

/** The daemon runs from dist/: build first so the benchmark never measures stale output. */
function build(): void {
  const result = spawnSync('npx', ['tsc', '-p', '.'], { cwd: ROOT, stdio: 'inherit' })
  if (result.status !== 0) throw new Error(`npx tsc -p . failed (exit ${result.status}); fix the build first`)
}

/** XADD n tiny entries, pipelined so the fill costs round trips per chunk, not per entry. */
async function fill(redis: Redis, stream: string, n: number): Promise<void> {
  for (let start = 0; start < n; start += FILL_CHUNK) {
    const pipeline = redis.pipeline()
    for (let i = start; i < Math.min(n, start + FILL_CHUNK); i++) {
      pipeline.xadd(stream, '*', 'id', `m${i}`, 'payload', '{"n":1}')
    }
    const results = await pipeline.exec()
    const failed = results?.find(([err]) => err)
    if (failed?.[0]) throw failed[0]
  }
}

interface GroupState {
  entriesRead: number
  lag: number | null
  pending: number
}

/** The group's progress from XINFO GROUPS, or null while the group does not exist yet. */
async function groupState(redis: Redis, stream: string): Promise<GroupState | null> {
  const groups = (await redis.xinfo('GROUPS', stream)) as unknown[][]
  for (const flat of groups) {
    const info = new Map<unknown, unknown>()
    for (let i = 0; i + 1 < flat.length; i += 2) info.set(flat[i], flat[i + 1])
    if (info.get('name') !== GROUP) continue
    // Without these fields "drained" can never be seen; fail fast instead of at the run timeout.
    if (!info.has('entries-read') || !info.has('lag'))
      throw new Error('XINFO GROUPS lacks entries-read/lag: needs Redis 7+')
    const lag = info.get('lag')
    return {
      entriesRead: Number(info.get('entries-read') ?? 0),
      lag: lag === null || lag === undefined ? null : Number(lag),
      pending: Number(info.get('pending')),
    }
  }
  return null
}

const drained = (s: GroupState | null, n: number) =>
  s !== null && s.entriesRead >= n && s.lag === 0 && s.pending === 0

/** Runs `fn` on a fresh stream key and deletes it (and a dead-letter stream, if any) afterwards. */
async function withStream<T>(
  redis: Redis,
  stream: string,
  n: number,
  fn: (stream: string) => Promise<T>,
): Promise<T> {
  try {
    await fill(redis, stream, n)
    return await fn(stream)
  } finally {
    await redis.del(stream, `{${stream}}:dlq`)
  }
}

/** The whole daemon, as deployed: a child process started from the build with its own config. */
async function benchDaemon(
  redis: Redis,
  stream: string,
  n: number,
  tmp: string,
  cpuProf?: string,
): Promise<Sample> {
  const configFile = path.join(tmp, `${stream.replaceAll(':', '_')}.json`)
  const config = {
    redisUrl: REDIS_URL,
    logLevel: 'warn',
    consumers: [
      {
        name: 'bench',
        stream,
        group: GROUP,
        handler: NOOP_HANDLER,
        batchSize: BATCH_SIZE,
        concurrency: THREADS,
        blockMs: BLOCK_MS,
      },
    ],
  }
  writeFileSync(configFile, JSON.stringify(config))

  // Env overrides would win over the config file; keep the run reproducible.
  const env = { ...process.env }
  for (const key of ['PORT', 'LOG_LEVEL', 'SHUTDOWN_TIMEOUT_MS', 'ACKSTATE_CONFIG']) delete env[key]
  const profiling = cpuProf ? ['--cpu-prof', '--cpu-prof-dir', cpuProf] : []

  const started = performance.now()
  // The daemon logs JSON on stdout; send it to our stderr so it never mixes with the table.
  const child = spawn(process.execPath, [...profiling, 'dist/src/cli.js', 'start', '--config', configFile], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 2, 2],
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  let alive = true
  void exited.then(() => (alive = false))

  try {
    let firstAck: { at: number; acked: number } | undefined
    let state: GroupState | null = null
    while (!drained(state, n)) {
      if (!alive) throw new Error(`daemon exited early with code ${await exited}`)
      if (performance.now() - started > RUN_TIMEOUT_MS)
        throw new Error(`daemon did not drain in ${RUN_TIMEOUT_MS} ms`)
      await sleep(POLL_MS)
      state = await groupState(redis, stream)
      const acked = state ? state.entriesRead - state.pending : 0
      if (!firstAck && acked > 0) firstAck = { at: performance.now(), acked }
    }
    const done = performance.now()
    // A daemon faster than one poll gives no steady window; fall back to wall time.
    const steady =
      firstAck && done > firstAck.at
        ? ((n - firstAck.acked) * 1000) / (done - firstAck.at)
        : (n * 1000) / (done - started)
    return { steady, wall: (n * 1000) / (done - started), startupMs: (firstAck?.at ?? done) - started }
  } finally {
    if (alive) child.kill('SIGTERM')
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000)
    const code = await exited
    clearTimeout(killer)
    if (code !== 0) process.stderr.write(`bench: daemon exited with code ${code}\n`)
  }
}

/** The raw ceiling: the same work with nothing but ioredis and Piscina, in this process. */
async function benchRaw(stream: string, n: number): Promise<Sample> {
  const redis = new Redis(REDIS_URL)
  await redis.xgroup('CREATE', stream, GROUP, '0')
  const started = performance.now()
  const pool = new Piscina({ filename: RAW_WORKER, minThreads: THREADS, maxThreads: THREADS })
  try {
    let acked = 0
    let firstAck: { at: number; acked: number } | undefined
    while (acked < n) {
      if (performance.now() - started > RUN_TIMEOUT_MS)
        throw new Error(`raw loop did not drain in ${RUN_TIMEOUT_MS} ms`)
      const reply = (await redis.xreadgroup(
        'GROUP',
        GROUP,
        'raw',
        'COUNT',
        BATCH_SIZE,
        'BLOCK',
        BLOCK_MS,
        'STREAMS',
        stream,
        '>',
      )) as [string, [string, string[]][]][] | null
      const entries = reply?.[0]?.[1]
      if (!entries || entries.length === 0) continue
      const results = (await pool.run(entries)) as { entryId: string; ok: boolean }[]
      const ids = results.filter((r) => r.ok).map((r) => r.entryId)
      if (ids.length > 0) await redis.xack(stream, GROUP, ...ids)
      acked += ids.length
      firstAck ??= { at: performance.now(), acked }
    }
    const done = performance.now()
    if (!drained(await groupState(redis, stream), n))
      throw new Error('raw loop finished but the group is not drained')
    const steady =
      done > firstAck!.at
        ? ((n - firstAck!.acked) * 1000) / (done - firstAck!.at)
        : (n * 1000) / (done - started)
    return { steady, wall: (n * 1000) / (done - started), startupMs: firstAck!.at - started }
  } finally {
    await pool.destroy()
    redis.disconnect()
  }
}

function summarise(samples: number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, samples }
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US')

async function main(): Promise<void> {
  const options = parseOptions()
  build()
  if (options.cpuProf) mkdirSync(options.cpuProf, { recursive: true })

  const redis = new Redis(REDIS_URL)
  const runId = randomUUID()
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'ackstate-bench-'))
  const results: Record<'daemon' | 'raw', Sample[]> = { daemon: [], raw: [] }
  const n = options.messages
  const log = (name: string, i: number, s: Sample) =>
    process.stderr.write(
      `bench: ${name} run ${i}/${options.runs}: ${fmt(s.steady)} msgs/s steady, ${fmt(s.wall)} msgs/s wall, ` +
        `first ack after ${Math.round(s.startupMs)} ms\n`,
    )
  try {
    for (let i = 1; i <= options.runs; i++) {
      const d = await withStream(redis, `bench:${runId}:daemon:${i}`, n, (s) =>
        benchDaemon(redis, s, n, tmp, options.cpuProf),
      )
      log('daemon', i, d)
      results.daemon.push(d)
      const r = await withStream(redis, `bench:${runId}:raw:${i}`, n, (s) => benchRaw(s, n))
      log('raw', i, r)
      results.raw.push(r)
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true })
    await redis.quit()
  }

  const rows = (['daemon', 'raw'] as const).flatMap((scenario) =>
    (['steady', 'wall'] as const).map((metric) => ({
      scenario,
      metric,
      ...summarise(results[scenario].map((s) => s[metric])),
    })),
  )
  const median = (scenario: string, metric: string) =>
    rows.find((r) => r.scenario === scenario && r.metric === metric)!.median
  const ratio = {
    steady: median('daemon', 'steady') / median('raw', 'steady'),
    wall: median('daemon', 'wall') / median('raw', 'wall'),
  }

  const header = ['scenario', 'metric', 'median msgs/s', 'min msgs/s', 'max msgs/s']
  const lines = rows.map((r) => [r.scenario, r.metric, fmt(r.median), fmt(r.min), fmt(r.max)])
  const widths = header.map((h, c) => Math.max(h.length, ...lines.map((l) => l[c]!.length)))
  const render = (cells: string[]) =>
    cells.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ')
  console.log(
    [
      `${fmt(n)} messages, batchSize ${BATCH_SIZE}, ${THREADS} threads, ${options.runs} runs each` +
        (options.cpuProf ? ' (daemon under --cpu-prof: its numbers are skewed)' : ''),
      render(header),
      ...lines.map(render),
      `ratio daemon/raw (median): steady ${ratio.steady.toFixed(2)}, wall ${ratio.wall.toFixed(2)}`,
      'steady = first ack → last ack; wall = daemon spawn / raw pool creation → last ack',
    ].join('\n'),
  )

  if (options.json) {
    const report = {
      messages: n,
      runs: options.runs,
      batchSize: BATCH_SIZE,
      threads: THREADS,
      node: process.version,
      definitions: {
        steady: `msgs/s from the first ack to the last (daemon: seen by XINFO GROUPS polled every ${POLL_MS} ms)`,
        wall: 'msgs/s from daemon spawn / raw pool creation to the last ack',
      },
      rows,
      ratio,
      startupMs: {
        daemon: summarise(results.daemon.map((s) => s.startupMs)),
        raw: summarise(results.raw.map((s) => s.startupMs)),
      },
    }
    writeFileSync(options.json, `${JSON.stringify(report, null, 2)}\n`)
  }
}

await main()
