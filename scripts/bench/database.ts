import { randomBytes } from 'node:crypto'
import pg from 'pg'
import type { Sequelize } from 'sequelize'
import { createLogger } from '../../src/log.js'
import { openStore } from '../../src/store/index.js'

/**
 * Throwaway PostgreSQL databases (`ackstate_bench_<random>`), one per run of a store scenario, so no
 * run sees another's rows. Every database created is remembered and dropped — `WITH (FORCE)`, so a
 * daemon still connected does not keep it — by `dropDatabase()` or, on any failure, `dropAll()`.
 */
export const PG_ADMIN_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

const created = new Set<string>()

/** Runs one statement on a short-lived connection; resolves with its rows. */
export async function adminQuery<T extends object>(url: string, sql: string, params: unknown[] = []) {
  const client = new pg.Client({ connectionString: url, application_name: 'ackstate-bench' })
  await client.connect()
  try {
    return (await client.query<T>(sql, params)).rows
  } finally {
    await client.end()
  }
}

export interface BenchDatabase {
  name: string
  url: string
}

export async function createDatabase(): Promise<BenchDatabase> {
  const name = `ackstate_bench_${randomBytes(8).toString('hex')}`
  created.add(name)
  await adminQuery(PG_ADMIN_URL, `CREATE DATABASE ${name}`)
  const url = new URL(PG_ADMIN_URL)
  url.pathname = `/${name}`
  return { name, url: url.toString() }
}

export async function dropDatabase(db: BenchDatabase): Promise<void> {
  await adminQuery(PG_ADMIN_URL, `DROP DATABASE IF EXISTS ${db.name} WITH (FORCE)`)
  created.delete(db.name)
}

/** Drops every database this process created and has not dropped yet (the failure path). */
export async function dropAll(): Promise<void> {
  for (const name of [...created]) {
    try {
      await adminQuery(PG_ADMIN_URL, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      created.delete(name)
    } catch (err) {
      process.stderr.write(`bench: could not drop database ${name}: ${String(err)}\n`)
    }
  }
}

/** A throwaway database for `fn`, dropped afterwards whatever happens. */
export async function withDatabase<T>(fn: (db: BenchDatabase) => Promise<T>): Promise<T> {
  const db = await createDatabase()
  try {
    return await fn(db)
  } finally {
    await dropDatabase(db)
  }
}

/** The store as the daemon opens it: connect, then apply the migrations (openStore). */
export function openMigrated(db: BenchDatabase): Promise<Sequelize> {
  const logger = createLogger('warn', process.stderr)
  return openStore({ databaseUrl: db.url, store: { enabled: true, migrateOnStart: true } }, logger).then(
    (store) => {
      if (!store) throw new Error('openStore returned no store with store.enabled true')
      return store
    },
  )
}

/** Polls `sql` (a single count) until it returns `want`; resolves with the time it was seen. */
export async function waitForCount(
  store: Sequelize,
  sql: string,
  bind: unknown[],
  want: (count: number) => boolean,
  { pollMs = 25, timeoutMs = 120_000, what = sql } = {},
): Promise<number> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const [rows] = (await store.query(sql, { bind })) as [{ n: string | number }[], unknown]
    const n = Number(rows[0]?.n ?? 0)
    if (want(n)) return performance.now()
    if (performance.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (at ${n})`)
    await new Promise((r) => setTimeout(r, pollMs))
  }
}
