import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { TestContext } from 'node:test'
import { Redis } from 'ioredis'

/** A free loopback port, found by binding port 0. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
}

export interface OwnRedis {
  url: string
  port: number
  /** Starts (again) on the same port; resolves once it answers PING. */
  start(): Promise<void>
  /** Kills it (SIGKILL: no save, no goodbye), by its pid. */
  kill(): Promise<void>
}

/**
 * A redis-server of the test's own on a free loopback port, for what must not touch the shared one
 * (FLUSHALL, killing it). Stopped by pid when the test ends. Extra arguments go to redis-server.
 */
export async function ownRedis(t: TestContext, extra: string[] = []): Promise<OwnRedis> {
  const port = await freePort()
  const dir = mkdtempSync(path.join(tmpdir(), 'ackstate-redis-'))
  let child: ChildProcess | null = null
  const own: OwnRedis = {
    url: `redis://127.0.0.1:${port}`,
    port,
    async start() {
      child = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--save',
          '',
          '--appendonly',
          'no',
          '--dir',
          dir,
          ...extra,
        ],
        { stdio: 'ignore' },
      )
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
        throw new Error(`redis-server on port ${port} did not start`)
      } finally {
        probe.disconnect()
      }
    },
    async kill() {
      const c = child
      child = null
      if (!c || c.exitCode !== null) return
      const exited = new Promise((r) => c.once('exit', r))
      c.kill('SIGKILL')
      await exited
    },
  }
  t.after(async () => {
    await own.kill()
    rmSync(dir, { recursive: true, force: true })
  })
  await own.start()
  return own
}
