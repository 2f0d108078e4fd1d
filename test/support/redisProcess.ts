import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import type { TestContext } from 'node:test'
import { Redis } from 'ioredis'

/** True when redis-server and redis-cli are on the PATH (the topology tests skip otherwise). */
export function haveRedisBinaries(): boolean {
  return ['redis-server', 'redis-cli'].every((bin) => spawnSync(bin, ['--version']).status === 0)
}

/** A redis-server (or sentinel) process the test owns, on a loopback port. */
export interface RedisProcess {
  port: number
  /** Starts it (again, same arguments); resolves once it answers PING. */
  start(): Promise<void>
  /** SIGKILL by pid: no save, no goodbye. */
  kill(): Promise<void>
  /** SIGSTOP: the process stays, its sockets stay open, it answers nothing (a frozen server). */
  freeze(): void
  /** SIGCONT after freeze(). */
  thaw(): void
  /** A short-lived connection to it (closed when the test ends), for admin commands. */
  admin(): Redis
}

/**
 * Spawns `redis-server ARGS` and stops it by pid when the test ends (thawed first, should it still
 * be frozen). Nothing else is touched: the shared Redis on 6379 stays out of it.
 */
export function redisProcess(t: TestContext, port: number, args: string[]): RedisProcess {
  let child: ChildProcess | null = null
  const admins: Redis[] = []
  const proc: RedisProcess = {
    port,
    async start() {
      child = spawn('redis-server', args, { stdio: 'ignore' })
      await waitForPing(port)
    },
    async kill() {
      const c = child
      child = null
      if (!c || c.exitCode !== null || c.signalCode !== null) return
      const exited = new Promise((r) => c.once('exit', r))
      c.kill('SIGKILL')
      await exited
    },
    freeze: () => void child?.kill('SIGSTOP'),
    thaw: () => void child?.kill('SIGCONT'),
    admin() {
      const redis = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1, retryStrategy: () => 200 })
      redis.on('error', () => {})
      admins.push(redis)
      return redis
    },
  }
  t.after(async () => {
    for (const a of admins) a.disconnect()
    proc.thaw()
    await proc.kill()
  })
  return proc
}

/** Resolves once the server on `port` answers PING (100 tries, 50 ms apart). */
export async function waitForPing(port: number): Promise<void> {
  const probe = new Redis(port, '127.0.0.1', {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  })
  probe.on('error', () => {})
  try {
    for (let i = 0; i < 100; i++) {
      try {
        await probe.connect()
        if ((await probe.ping()) === 'PONG') return
      } catch {
        probe.disconnect()
        await new Promise((r) => setTimeout(r, 50))
      }
    }
    throw new Error(`redis on port ${port} did not start`)
  } finally {
    probe.disconnect()
  }
}

/** Polls `check` every 50 ms until it is truthy; fails naming `what` after `timeoutMs`. */
export async function until(check: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check().catch(() => false)) return
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}
