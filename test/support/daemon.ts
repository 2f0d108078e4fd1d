import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { TestContext } from 'node:test'
import { REDIS_URL } from './redis.js'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const FIXTURES = path.join(ROOT, 'test/fixtures/handlers')
const CLI = path.join(ROOT, 'src/cli.ts')

/** Writes `config` as JSON into a fresh temp dir (removed after the test); returns the file path. */
export function writeConfig(t: TestContext, config: unknown): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'ackstate-test-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'config.json')
  writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config, null, 2))
  return file
}

export interface DaemonProcess {
  child: ChildProcess
  /** Parsed JSON log lines so far. */
  logs: Record<string, unknown>[]
  stderr: () => string
  /** Resolves with the exit code (or signal) once the process ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>
  /** Resolves with the first log line matching `match`. */
  waitForLog(
    match: (line: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>
}

/** Runs `ackstate ARGS` from source as a child process; killed when the test ends if still running. */
export function runCli(t: TestContext, args: string[], env: NodeJS.ProcessEnv = {}): DaemonProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
    cwd: ROOT,
    // The store is off unless a test gives its own DATABASE_URL (test/support/postgres.ts).
    env: {
      PATH: process.env.PATH,
      REDIS_URL,
      ...(env.DATABASE_URL ? {} : { ACKSTATE_STORE_ENABLED: 'false' }),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const logs: Record<string, unknown>[] = []
  let stderr = ''
  let buffer = ''
  const waiters: {
    match: (l: Record<string, unknown>) => boolean
    resolve: (l: Record<string, unknown>) => void
  }[] = []
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk
    let nl: number
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl)
      buffer = buffer.slice(nl + 1)
      let parsed: Record<string, unknown>
      try {
        parsed = JSON.parse(line) as Record<string, unknown>
      } catch {
        parsed = { raw: line }
      }
      logs.push(parsed)
      for (const w of [...waiters]) {
        if (w.match(parsed)) {
          waiters.splice(waiters.indexOf(w), 1)
          w.resolve(parsed)
        }
      }
    }
  })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  )
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  return {
    child,
    logs,
    stderr: () => stderr,
    exited,
    waitForLog(match, timeoutMs = 15_000) {
      const found = logs.find(match)
      if (found) return Promise.resolve(found)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new Error(
                `no matching log line within ${timeoutMs} ms; stderr: ${stderr}; logs: ${JSON.stringify(logs.slice(-5))}`,
              ),
            ),
          timeoutMs,
        )
        waiters.push({
          match,
          resolve: (l) => {
            clearTimeout(timer)
            resolve(l)
          },
        })
      })
    },
  }
}
