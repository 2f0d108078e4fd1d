import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { TestContext } from 'node:test'
import { redisProcess } from './redisProcess.js'

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
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const args = [
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
  ]
  // Without persistence the server writes nothing there, so the two cleanups may run in either order.
  const proc = redisProcess(t, port, [...args, ...extra])
  await proc.start()
  return { url: `redis://127.0.0.1:${port}`, port, start: () => proc.start(), kill: () => proc.kill() }
}
