import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { TestContext } from 'node:test'
import { promisify } from 'node:util'
import type { RedisTopology } from '../../src/redisConfig.js'
import { redisProcess, until, type RedisProcess } from './redisProcess.js'
import { freePort } from './redisServer.js'

const run = promisify(execFile)

export interface ClusterTopology {
  masters: RedisProcess[]
  /** The `redis` section that points the daemon at this cluster. */
  topology: RedisTopology
  /** The master serving `slot` now. */
  ownerOf(slot: number): Promise<RedisProcess>
  /** Resolves once every master reports cluster_state:ok. */
  waitForOk(timeoutMs?: number): Promise<void>
  /**
   * Moves one slot, keys and all, with the cluster's own protocol (IMPORTING/MIGRATING, MIGRATE in
   * batches, SETSLOT NODE), the way `redis-cli --cluster reshard` does; clients meet ASK and
   * TRYAGAIN meanwhile, then MOVED.
   */
  moveSlot(slot: number, to: RedisProcess): Promise<void>
}

/**
 * Three masters (no replicas) made into a cluster by `redis-cli --cluster create`, each a redis-server
 * on free loopback ports (its own cluster-bus port too) with its own directory, so a killed master
 * restarts with its nodes.conf — its slots — and an empty dataset. Stopped by pid when the test ends.
 */
export async function clusterTopology(t: TestContext, timeoutMs = 1_500): Promise<ClusterTopology> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ackstate-cluster-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const masters: RedisProcess[] = []
  for (let i = 0; i < 3; i++) {
    const port = await freePort()
    const busPort = await freePort()
    const own = path.join(dir, String(port))
    mkdirSync(own)
    const master = redisProcess(t, port, [
      ...['--port', String(port), '--bind', '127.0.0.1', '--dir', own, '--save', '', '--appendonly', 'no'],
      ...['--cluster-enabled', 'yes', '--cluster-port', String(busPort), '--cluster-node-timeout', '1000'],
    ])
    await master.start()
    masters.push(master)
  }
  await run('redis-cli', [
    '--cluster',
    'create',
    ...masters.map((m) => `127.0.0.1:${m.port}`),
    '--cluster-yes',
  ])
  const admins = new Map(masters.map((m) => [m, m.admin()]))
  const waitForOk = (ms = 15_000) =>
    until(
      async () => {
        for (const admin of admins.values())
          if (!/cluster_state:ok/.test(String(await admin.call('CLUSTER', 'INFO')))) return false
        return true
      },
      'cluster_state:ok on every master',
      ms,
    )
  await waitForOk()
  const idOf = async (m: RedisProcess) => String(await admins.get(m)!.call('CLUSTER', 'MYID'))
  const ownerOf = async (slot: number) => {
    // Any live master's view will do; a killed one does not answer.
    for (const admin of admins.values()) {
      const ranges = (await admin.call('CLUSTER', 'SLOTS').catch(() => [])) as [
        number,
        number,
        [string, number],
      ][]
      const range = ranges.find(([from, to]) => slot >= from && slot <= to)
      if (range) return masters.find((x) => x.port === Number(range[2][1]))!
    }
    throw new Error(`no master serves slot ${slot}`)
  }
  return {
    masters,
    topology: {
      mode: 'cluster',
      sentinels: [],
      masterName: '',
      sentinelPassword: null,
      nodes: masters.map((m) => `127.0.0.1:${m.port}`),
      timeoutMs,
    },
    ownerOf,
    waitForOk,
    async moveSlot(slot, to) {
      const from = await ownerOf(slot)
      const [source, target] = [admins.get(from)!, admins.get(to)!]
      const [fromId, toId] = [await idOf(from), await idOf(to)]
      await target.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', fromId)
      await source.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', toId)
      for (;;) {
        const keys = (await source.call('CLUSTER', 'GETKEYSINSLOT', slot, 10)) as string[]
        if (keys.length === 0) break
        await source.call('MIGRATE', '127.0.0.1', to.port, '', 0, 5_000, 'KEYS', ...keys)
      }
      for (const admin of new Set([target, source, ...admins.values()]))
        await admin.call('CLUSTER', 'SETSLOT', slot, 'NODE', toId)
    },
  }
}
