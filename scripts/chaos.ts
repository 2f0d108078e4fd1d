/**
 * The fault-injection suite's runner: `npm run test:chaos [-- --runs N --seed S --only PATTERN]`.
 *
 * Runs test/chaos/*.test.ts one file at a time (each starts its own redis-server, database and daemon
 * child processes), passing CHAOS_RUNS, CHAOS_SEED and CHAOS_OUT (test-results/chaos/<time>/: every
 * scenario's publishes, invocations and daemon logs, and results.jsonl). Then prints the table and, on a
 * full run (no --only), writes CHAOS.md. Exits with the test runner's code.
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { renderChaosMd, renderNotes, renderTable, type ScenarioResult } from '../test/chaos/report.js'
import { ROOT } from '../test/chaos/settings.js'
import { postgresBin } from '../test/chaos/servers.js'

const USAGE = 'usage: npm run test:chaos [-- --runs N --seed S --only PATTERN]'

/** CHAOS.md lists the families in this order, scenarios in the order they ran. */
const FAMILIES = ['daemon', 'redis', 'postgresql', 'handler', 'bad input']

function number(raw: string | undefined, flag: string, fallback: number): number {
  if (raw === undefined) return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 0) {
    process.stderr.write(`chaos: ${flag} must be a whole number, got "${raw}". ${USAGE}\n`)
    process.exit(2)
  }
  return n
}

function firstLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' })
  return r.status === 0 ? r.stdout.trim().split('\n')[0]! : `${cmd}: not found`
}

function versions(): string {
  const bin = postgresBin()
  const postgres = bin ? firstLine(path.join(bin, 'postgres'), ['--version']) : 'postgres: not found'
  const redis = firstLine('redis-server', ['--version']).replace(/ sha=.*$/, '')
  return `Node ${process.version}, ${redis}, ${postgres}`
}

function machine(): string {
  const cpus = os.cpus()
  return `${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}`
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string' },
      seed: { type: 'string' },
      only: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  })
  if (values.help) {
    process.stdout.write(`${USAGE}\n`)
    return 0
  }
  const runs = Math.max(1, number(values.runs, '--runs', 1))
  const seed = number(values.seed, '--seed', Math.floor(Math.random() * 1_000_000))
  const dir = path.join(ROOT, 'test', 'chaos')
  const only = values.only ? new RegExp(values.only) : null
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.test.ts'))
    .filter((f) => !only || only.test(f))
    .sort()
    .map((f) => path.join('test', 'chaos', f))
  if (files.length === 0) {
    process.stderr.write(`chaos: no test file matches --only ${values.only}\n`)
    return 2
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  const out = path.join(ROOT, 'test-results', 'chaos', stamp)
  mkdirSync(out, { recursive: true })
  process.stdout.write(`chaos: runs ${runs}, seed ${seed}, records in ${path.relative(ROOT, out)}\n`)

  const started = Date.now()
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-force-exit', ...files],
    {
      cwd: ROOT,
      stdio: 'inherit',
      env: { ...process.env, CHAOS_RUNS: String(runs), CHAOS_SEED: String(seed), CHAOS_OUT: out },
    },
  )
  const exitCode = await new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? 1)))
  const totalMs = Date.now() - started

  const file = path.join(out, 'results.jsonl')
  const results = existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as ScenarioResult)
    : []
  const rank = (r: ScenarioResult) => {
    const i = FAMILIES.indexOf(r.family)
    return i < 0 ? FAMILIES.length : i
  }
  const ordered = results
    .map((r, i) => ({ r, i }))
    .sort((a, b) => rank(a.r) - rank(b.r) || a.i - b.i)
    .map((x) => x.r)
  process.stdout.write(`\n${renderTable(ordered)}\n\n${renderNotes(ordered)}\n`)
  process.stdout.write(
    `\nchaos: ${results.length} scenarios in ${(totalMs / 1000).toFixed(0)} s, exit ${exitCode}\n`,
  )

  if (!only) {
    const command = `npm run test:chaos${runs > 1 || values.seed ? ` -- --runs ${runs} --seed ${seed}` : ''}`
    writeFileSync(
      path.join(ROOT, 'CHAOS.md'),
      renderChaosMd(ordered, {
        date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        machine: machine(),
        versions: versions(),
        seed,
        runs,
        command,
        totalMs,
        exitCode,
      }),
    )
    process.stdout.write('chaos: CHAOS.md written\n')
  }
  return exitCode
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`chaos: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    process.exit(1)
  },
)
