import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { TestContext } from 'node:test'
import type { RedisTopology } from '../../src/redisConfig.js'
import { redisProcess, until, type RedisProcess } from './redisProcess.js'
import { freePort } from './redisServer.js'

export const MASTER_NAME = 'ackstate-test'

export interface SentinelTopology {
  /** The data nodes: [0] starts as master, [1] as its replica. */
  servers: RedisProcess[]
  sentinels: RedisProcess[]
  /** The `redis` section that points the daemon at these sentinels. */
  topology: RedisTopology
  /** The master the sentinels name now. */
  master(): Promise<RedisProcess>
  /** Resolves once every sentinel names another master than `old`, and it accepts writes. */
  waitForNewMaster(old: RedisProcess, timeoutMs?: number): Promise<RedisProcess>
}

/**
 * A master, its replica and three sentinels (quorum 2, down after 1 s), all redis-server processes on
 * free loopback ports that the test owns and stops by pid. Resolves once the replica is in sync and
 * every sentinel knows the replica and the two other sentinels, so both a forced and an agreed
 * failover can happen.
 */
export async function sentinelTopology(t: TestContext, timeoutMs = 1_500): Promise<SentinelTopology> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ackstate-sentinel-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const base = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']
  const masterPort = await freePort()
  const replicaPort = await freePort()
  const servers = [
    redisProcess(t, masterPort, ['--port', String(masterPort), '--dir', dir, ...base]),
    redisProcess(t, replicaPort, [
      ...['--port', String(replicaPort), '--dir', dir, ...base],
      ...['--replicaof', '127.0.0.1', String(masterPort)],
    ]),
  ]
  for (const s of servers) await s.start()
  const sentinels: RedisProcess[] = []
  for (let i = 0; i < 3; i++) {
    const port = await freePort()
    const file = path.join(dir, `sentinel-${port}.conf`)
    writeFileSync(
      file,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${masterPort} 2`,
        `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
        `sentinel failover-timeout ${MASTER_NAME} 3000`,
        '',
      ].join('\n'),
    )
    const sentinel = redisProcess(t, port, [file, '--sentinel'])
    await sentinel.start()
    sentinels.push(sentinel)
  }
  const admins = sentinels.map((s) => s.admin())
  const replica = servers[1]!.admin()
  await until(
    async () => /master_link_status:up/.test(await replica.info('replication')),
    'the replica to sync',
  )
  await until(async () => {
    for (const a of admins) {
      const replicas = (await a.call('SENTINEL', 'REPLICAS', MASTER_NAME)) as unknown[]
      const peers = (await a.call('SENTINEL', 'SENTINELS', MASTER_NAME)) as unknown[]
      if (replicas.length < 1 || peers.length < 2) return false
    }
    return true
  }, 'the sentinels to know the replica and each other')

  const byPort = (port: number) => servers.find((s) => s.port === port)!
  const named = async (admin = admins[0]!) =>
    Number(((await admin.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER_NAME)) as string[])[1])
  return {
    servers,
    sentinels,
    topology: {
      mode: 'sentinel',
      sentinels: sentinels.map((s) => `127.0.0.1:${s.port}`),
      masterName: MASTER_NAME,
      sentinelPassword: null,
      nodes: [],
      timeoutMs,
    },
    master: async () => byPort(await named()),
    async waitForNewMaster(old, ms = 20_000) {
      let port = old.port
      await until(
        async () => {
          const ports = await Promise.all(admins.map((a) => named(a)))
          port = ports[0]!
          if (port === old.port || ports.some((p) => p !== port)) return false
          return /role:master/.test(await byPort(port).admin().info('replication'))
        },
        'a new master',
        ms,
      )
      return byPort(port)
    },
  }
}
