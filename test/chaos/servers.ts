import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir, userInfo } from 'node:os'
import path from 'node:path'
import type { TestContext } from 'node:test'
import { Redis } from 'ioredis'
import pg from 'pg'
import { freePort } from '../support/redisServer.js'

export { freePort }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Polls `check` until it is truthy; throws naming `what` after `timeoutMs`. */
export async function until<T>(
  check: () => Promise<T | false | undefined | null> | T | false | undefined | null,
  what: string,
  timeoutMs = 15_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await check()
      if (value !== false && value !== undefined && value !== null) return value
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last instanceof Error ? last.message : JSON.stringify(last)})` : ''}`,
      )
    }
    await sleep(everyMs)
  }
}

/** A short-lived ioredis connection that gives up at once instead of queueing. */
export function adminRedis(port: number): Redis {
  const redis = new Redis(port, '127.0.0.1', {
    maxRetriesPerRequest: 1,
    retryStrategy: (n) => Math.min(n * 50, 500),
    enableOfflineQueue: true,
  })
  redis.on('error', () => {})
  return redis
}

export type Persistence = 'none' | 'aof-everysec'

/**
 * A redis-server the suite owns, on a free loopback port, in a directory of its own (so an AOF
 * survives a restart). Signalled only by the pid of the child it spawned.
 */
export class RedisServer {
  readonly dir: string
  private child: ChildProcess | null = null

  private constructor(
    readonly port: number,
    readonly persistence: Persistence,
    private readonly extra: string[],
    private readonly command: string[] | undefined,
  ) {
    this.dir = mkdtempSync(path.join(tmpdir(), 'ackstate-chaos-redis-'))
  }

  /** `command`: the whole argument list instead of the usual one (a sentinel's config file). */
  static async open(
    t: TestContext,
    {
      persistence = 'none',
      extra = [],
      port,
      command,
    }: { persistence?: Persistence; extra?: string[]; port?: number; command?: string[] } = {},
  ): Promise<RedisServer> {
    const server = new RedisServer(port ?? (await freePort()), persistence, extra, command)
    t.after(async () => {
      await server.kill()
      rmSync(server.dir, { recursive: true, force: true })
    })
    await server.start()
    return server
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`
  }

  get pid(): number | undefined {
    return this.child?.pid
  }

  args(): string[] {
    if (this.command) return this.command
    const persistence =
      this.persistence === 'aof-everysec'
        ? ['--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '']
        : ['--appendonly', 'no', '--save', '']
    return [
      '--port',
      String(this.port),
      '--bind',
      '127.0.0.1',
      '--dir',
      this.dir,
      ...persistence,
      ...this.extra,
    ]
  }

  /** Starts it (again, on the same port and directory); resolves once it answers PING. */
  async start(): Promise<void> {
    this.child = spawn('redis-server', this.args(), { stdio: 'ignore' })
    const probe = adminRedis(this.port)
    try {
      await until(
        async () => (await probe.ping()) === 'PONG',
        `redis-server on ${this.port} to answer`,
        15_000,
      )
    } finally {
      probe.disconnect()
    }
  }

  /** kill -9 by pid: no save, no goodbye. */
  async kill(): Promise<void> {
    const c = this.child
    this.child = null
    if (!c || c.exitCode !== null || c.signalCode !== null) return
    const exited = new Promise((r) => c.once('exit', r))
    c.kill('SIGKILL')
    await exited
  }
}

/** The Debian PostgreSQL binaries (newest version), or null when they are not installed. */
export function postgresBin(): string | null {
  const root = '/usr/lib/postgresql'
  if (!existsSync(root)) return null
  const versions = readdirSync(root)
    .filter((v) => existsSync(path.join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a))
  return versions[0] ? path.join(root, versions[0], 'bin') : null
}

/**
 * A throwaway PostgreSQL cluster the suite creates (initdb) and may stop and start: trust auth, on a
 * free loopback port, socket in its own directory. initdb refuses root, so as root the binaries run
 * as the `postgres` OS user on a directory that user owns. Stopped (immediate) and removed at the end.
 */
export class OwnCluster {
  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly bin: string,
    private readonly asUser: string[],
  ) {}

  /** Null, with the reason, when the binaries or the postgres OS user are missing. */
  static async create(t: TestContext): Promise<OwnCluster | { skip: string }> {
    const bin = postgresBin()
    if (!bin) return { skip: 'PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin' }
    let asUser: string[] = []
    const dir = mkdtempSync(path.join(tmpdir(), 'ackstate-chaos-pg-'))
    t.after(() => rmSync(dir, { recursive: true, force: true }))
    if (userInfo().uid === 0) {
      const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' })
      if (id.status !== 0) return { skip: 'running as root and there is no `postgres` OS user for initdb' }
      const uid = Number(id.stdout.trim())
      const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim())
      chownSync(dir, uid, gid)
      asUser = ['runuser', '-u', 'postgres', '--']
    }
    const cluster = new OwnCluster(dir, await freePort(), bin, asUser)
    const data = path.join(dir, 'data')
    const init = cluster.run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync'])
    if (init.status !== 0) return { skip: `initdb failed: ${init.stderr}` }
    t.after(() => cluster.stop('immediate'))
    await cluster.start()
    return cluster
  }

  private run(tool: string, args: string[]) {
    const [cmd, ...pre] = this.asUser.length > 0 ? this.asUser : [path.join(this.bin, tool)]
    const full = this.asUser.length > 0 ? [...pre, path.join(this.bin, tool), ...args] : args
    return spawnSync(cmd!, full, { encoding: 'utf8', timeout: 60_000 })
  }

  get adminUrl(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`
  }

  urlFor(database: string): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`
  }

  /** pg_ctl start -w: returns once it accepts connections. */
  async start(): Promise<void> {
    const options = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`
    const r = this.run('pg_ctl', [
      '-D',
      path.join(this.dir, 'data'),
      '-o',
      options,
      '-l',
      path.join(this.dir, 'log'),
      '-w',
      'start',
    ])
    if (r.status !== 0) throw new Error(`pg_ctl start failed: ${r.stderr}${r.stdout}`)
    await until(async () => {
      const c = new pg.Client({ connectionString: this.adminUrl })
      await c.connect()
      await c.end()
      return true
    }, 'the own PostgreSQL cluster to accept connections')
  }

  /** pg_ctl stop (fast: connections closed, a clean shutdown; immediate: like a crash). */
  stop(mode: 'fast' | 'immediate' = 'fast'): void {
    const data = path.join(this.dir, 'data')
    if (!existsSync(path.join(data, 'postmaster.pid'))) return
    this.run('pg_ctl', ['-D', data, '-m', mode, '-w', 'stop'])
  }
}

/** Makes a directory (recursive) and returns it. */
export function ensureDir(dir: string): string {
  mkdirSync(dir, { recursive: true })
  return dir
}

/**
 * A master, its replica and one sentinel (quorum 1, down after 1 s), all redis-server processes the
 * suite owns on free loopback ports. Resolves once the replica is in sync and the sentinel knows it,
 * so `SENTINEL FAILOVER` (or a dead master) can promote it.
 */
export class SentinelSetup {
  static readonly MASTER_NAME = 'chaos'

  private constructor(
    /** [0] starts as the master, [1] as its replica. */
    readonly servers: [RedisServer, RedisServer],
    readonly sentinel: RedisServer,
  ) {}

  static async open(t: TestContext): Promise<SentinelSetup> {
    const master = await RedisServer.open(t)
    const replica = await RedisServer.open(t, { extra: ['--replicaof', '127.0.0.1', String(master.port)] })
    const port = await freePort()
    const dir = mkdtempSync(path.join(tmpdir(), 'ackstate-chaos-sentinel-'))
    t.after(() => rmSync(dir, { recursive: true, force: true }))
    const file = path.join(dir, 'sentinel.conf')
    const name = SentinelSetup.MASTER_NAME
    writeFileSync(
      file,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${master.port} 1`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 3000`,
        '',
      ].join('\n'),
    )
    const sentinel = await RedisServer.open(t, { port, command: [file, '--sentinel'] })
    const setup = new SentinelSetup([master, replica], sentinel)
    const replicaAdmin = adminRedis(replica.port)
    const sentinelAdmin = adminRedis(port)
    try {
      await until(
        async () => /master_link_status:up/.test(await replicaAdmin.info('replication')),
        'the replica to sync',
      )
      await until(
        async () => ((await sentinelAdmin.call('SENTINEL', 'REPLICAS', name)) as unknown[]).length >= 1,
        'the sentinel to know the replica',
      )
    } finally {
      replicaAdmin.disconnect()
      sentinelAdmin.disconnect()
    }
    return setup
  }

  get sentinelAddress(): { host: string; port: number } {
    return { host: '127.0.0.1', port: this.sentinel.port }
  }

  /** The port of the master the sentinel names now. */
  async masterPort(): Promise<number> {
    const admin = adminRedis(this.sentinel.port)
    try {
      const [, port] = (await admin.call(
        'SENTINEL',
        'GET-MASTER-ADDR-BY-NAME',
        SentinelSetup.MASTER_NAME,
      )) as string[]
      return Number(port)
    } finally {
      admin.disconnect()
    }
  }

  server(port: number): RedisServer {
    return this.servers.find((s) => s.port === port)!
  }

  /** Waits until the sentinel names a master other than `old`, and that one takes writes. */
  async waitForNewMaster(old: number, timeoutMs = 20_000): Promise<number> {
    return until(
      async () => {
        const port = await this.masterPort()
        if (port === old) return false
        const admin = adminRedis(port)
        try {
          return /role:master/.test(await admin.info('replication')) ? port : false
        } finally {
          admin.disconnect()
        }
      },
      'a new master',
      timeoutMs,
      100,
    )
  }

  /** Waits until `port` is a replica in sync with the master. */
  async waitForReplica(port: number, timeoutMs = 20_000): Promise<void> {
    const admin = adminRedis(port)
    try {
      await until(
        async () => {
          const info = await admin.info('replication')
          return /role:slave/.test(info) && /master_link_status:up/.test(info)
        },
        `${port} to be a replica in sync`,
        timeoutMs,
        100,
      )
    } finally {
      admin.disconnect()
    }
  }
}
