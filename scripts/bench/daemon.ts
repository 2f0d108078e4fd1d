import { spawn, spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { GROUP, REDIS_URL } from './redis.js'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
export const NOOP_HANDLER = path.join(ROOT, 'scripts/bench/noop.mjs')
export const RECORD_HANDLER = path.join(ROOT, 'scripts/bench/recordSeen.mjs')
export const SLOW_HANDLER = path.join(ROOT, 'scripts/bench/slowHandler.mjs')
/** Env var naming the file recordSeen.mjs and slowHandler.mjs append to (worker threads inherit the env). */
export const SEEN_FILE_ENV = 'ACKSTATE_BENCH_SEEN_FILE'
/** Env var: how long slowHandler.mjs takes per message, in ms. */
export const SLOW_MS_ENV = 'ACKSTATE_BENCH_SLOW_MS'

/**
 * The node flags of the Procfile's `worker:` line, so every scenario runs the daemon as a deployment
 * does. Throws when the line is not `worker: node [flags] dist/src/cli.js start …`.
 */
export function deployedNodeFlags(procfile = readFileSync(path.join(ROOT, 'Procfile'), 'utf8')): string[] {
  const line = procfile.split('\n').find((l) => l.startsWith('worker:'))
  const flags = line?.match(/^worker:\s*node\s+(.*?)\s*dist\/src\/cli\.js\s+start\b/)?.[1]
  if (flags === undefined)
    throw new Error(
      `Procfile: expected a line "worker: node [flags] dist/src/cli.js start …", got ${JSON.stringify(line ?? null)}; the benchmark runs the daemon as that line does`,
    )
  return flags === '' ? [] : flags.split(/\s+/)
}
const NODE_FLAGS = deployedNodeFlags()

/** Settings of the throughput runs (the raw ceiling uses the same). */
export const BATCH_SIZE = 500
export const THREADS = 2
export const BLOCK_MS = 100
/** Read loops of the throughput runs: the next batch is read and claimed while one runs in the pool. */
export const READERS = 2

/**
 * The daemon runs from dist/: build first so the benchmark never measures stale output. tsc emits even
 * with type errors; errors only in files the daemon does not run (test/, scripts/) are reported and
 * the run goes on, since other work in progress there does not change dist/src.
 */
export function build(): void {
  const result = spawnSync('npx', ['tsc', '-p', '.'], { cwd: ROOT, encoding: 'utf8' })
  if (result.status === 0) return
  const output = `${result.stdout}${result.stderr}`
  process.stderr.write(output)
  const files = [...output.matchAll(/^([^\s(]+)\(\d+,\d+\): error/gm)].map((m) => m[1]!)
  const runtime = files.filter((f) => !/^(test|scripts)\//.test(f))
  if (files.length === 0 || runtime.length > 0)
    throw new Error(`npx tsc -p . failed (exit ${result.status}); fix the build first`)
  process.stderr.write(
    `bench: type errors only in ${[...new Set(files)].join(', ')}; dist/src is built, going on\n`,
  )
}

// Env overrides win over the config file: drop every one the config sets, so runs are reproducible
// and a DATABASE_URL in the shell never points a storeless run at a real database.
const SCRUBBED = [
  'PORT',
  'LOG_LEVEL',
  'SHUTDOWN_TIMEOUT_MS',
  'ACKSTATE_CONFIG',
  'REDIS_URL',
  'DATABASE_URL',
  'ACKSTATE_STORE_ENABLED',
  'ACKSTATE_MIGRATE_ON_START',
  'ACKSTATE_RECOVERY_AUTO',
  'ACKSTATE_DEBUG',
]

export interface DaemonSpec {
  stream: string
  /** Written into this directory as `<label>.json`. */
  tmp: string
  label: string
  handler?: string
  /** Consumer keys over the defaults below; `{}` keeps the daemon's own defaults. */
  consumer?: Record<string, unknown>
  /** PostgreSQL database URL: store enabled (migrated at start); absent: `store.enabled` false. */
  databaseUrl?: string
  env?: Record<string, string>
  cpuProf?: string
}

export interface Daemon {
  pid: number | undefined
  /** performance.now() at spawn. */
  started: number
  /** Null while running; otherwise why it is not (for waitDrained). */
  check: () => Promise<string | null>
  /** SIGTERM, then SIGKILL after 30 s; resolves with the exit code. */
  stop: () => Promise<number | null>
  /** Sends a signal and returns at once. */
  kill: (signal: NodeJS.Signals) => void
  /** Resolves when the process exited: its code and performance.now() then. */
  exited: Promise<{ code: number | null; at: number }>
}

/** The whole daemon, as deployed: `node dist/src/cli.js start` with its own config file. */
export function startDaemon(spec: DaemonSpec): Daemon {
  const configFile = path.join(spec.tmp, `${spec.label}.json`)
  const config = {
    redisUrl: REDIS_URL,
    logLevel: 'warn',
    store: spec.databaseUrl ? { enabled: true, migrateOnStart: true } : { enabled: false },
    ...(spec.databaseUrl ? { databaseUrl: spec.databaseUrl } : {}),
    consumers: [
      {
        name: 'bench',
        stream: spec.stream,
        group: GROUP,
        handler: spec.handler ?? NOOP_HANDLER,
        ...(spec.consumer ?? {
          batchSize: BATCH_SIZE,
          concurrency: THREADS,
          blockMs: BLOCK_MS,
          readers: READERS,
        }),
      },
    ],
  }
  writeFileSync(configFile, JSON.stringify(config))
  const env: NodeJS.ProcessEnv = { ...process.env, ...spec.env }
  for (const key of SCRUBBED) delete env[key]
  const profiling = spec.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', spec.cpuProf] : []

  const started = performance.now()
  // The daemon logs JSON on stdout; send it to our stderr so it never mixes with the table.
  const child = spawn(
    process.execPath,
    [...NODE_FLAGS, ...profiling, 'dist/src/cli.js', 'start', '--config', configFile],
    {
      cwd: ROOT,
      env,
      stdio: ['ignore', 2, 2],
    },
  )
  let exitCode: number | null | undefined
  let killed = false
  const exit = new Promise<{ code: number | null; at: number }>((resolve) =>
    child.once('exit', (code) => {
      exitCode = code
      resolve({ code, at: performance.now() })
    }),
  )
  const exited = exit.then((e) => e.code)
  return {
    pid: child.pid,
    started,
    check: () =>
      Promise.resolve(
        exitCode === undefined ? null : `daemon ${spec.label} exited early with code ${exitCode}`,
      ),
    stop: async () => {
      if (exitCode === undefined) child.kill('SIGTERM')
      const killer = setTimeout(() => child.kill('SIGKILL'), 30_000)
      const code = await exited
      clearTimeout(killer)
      if (code !== 0 && !killed)
        process.stderr.write(`bench: daemon ${spec.label} exited with code ${code}\n`)
      return code
    },
    kill: (signal) => {
      if (signal === 'SIGKILL') killed = true
      child.kill(signal)
    },
    exited: exit,
  }
}
