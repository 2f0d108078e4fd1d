import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { Writable } from 'node:stream'
import type { TestContext } from 'node:test'
import pg from 'pg'
import { createLogger, type Logger } from '../../src/log.js'
import { eventually } from './redis.js'

/**
 * Isolation: every test gets a database of its own (`ackstate_test_<random>`), dropped when the test
 * ends — not a schema. The code under test takes a plain DATABASE_URL (as the CLI and Heroku do), and
 * creating a missing database is itself under test, so a database is the unit that fits.
 */
export const PG_ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

/** The admin URL pointing at another database. */
export function urlFor(database: string, base = PG_ADMIN_URL): string {
  const url = new URL(base)
  url.pathname = `/${database}`
  return url.toString()
}

/** Runs one statement on a short-lived connection to `url`; resolves with its rows. */
export async function query<T extends object = Record<string, unknown>>(
  url: string,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query<T>(sql, params)).rows
  } finally {
    await client.end()
  }
}

/**
 * Takes a lock, as another daemon's transaction would hold it: runs `sql` (LOCK TABLE …, SELECT … FOR
 * UPDATE) in a transaction on a connection of its own, until `release()` rolls it back. A test that
 * fails first leaves it to the test database's drop, which ends the connection.
 */
export async function holdLock(url: string, sql: string): Promise<{ release: () => Promise<void> }> {
  const client = new pg.Client({ connectionString: url })
  client.on('error', () => {})
  await client.connect()
  await client.query('BEGIN')
  await client.query(sql)
  return {
    release: async () => {
      await client.query('ROLLBACK')
      await client.end()
    },
  }
}

/**
 * While `lock` holds the row of `held`, every other id goes out (`out()` lists those out so far) and
 * `held` does not; once released, `held` goes out too. What SKIP LOCKED gives a second daemon.
 */
export async function goesAroundHeld(
  out: () => Promise<Set<string>>,
  ids: string[],
  held: string,
  lock: { release: () => Promise<void> },
): Promise<void> {
  await eventually(
    async () => {
      const now = await out()
      return ids.every((id) => id === held || now.has(id))
    },
    { what: `every row but ${held} out while it is held` },
  )
  assert.ok(!(await out()).has(held), `${held} is not sent while it is held`)
  await lock.release()
  await eventually(async () => (await out()).has(held), { what: `${held} once its lock is gone` })
}

/** True when a database of that name exists. */
export async function databaseExists(name: string): Promise<boolean> {
  const rows = await query(PG_ADMIN_URL, 'SELECT 1 FROM pg_database WHERE datname = $1', [name])
  return rows.length === 1
}

/**
 * A uniquely named database for this test, dropped (connections and all) when it ends. With
 * `create: false` only the name is reserved: the code under test is expected to create it.
 */
export async function testDatabase(
  t: TestContext,
  { create = true }: { create?: boolean } = {},
): Promise<{ name: string; url: string }> {
  const name = `ackstate_test_${randomUUID().replaceAll('-', '').slice(0, 16)}`
  t.after(() => query(PG_ADMIN_URL, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
  if (create) await query(PG_ADMIN_URL, `CREATE DATABASE ${name}`)
  return { name, url: urlFor(name) }
}

/** A pino logger whose lines the test can read (parsed), at debug unless told otherwise. */
export function testLogger(level: 'debug' | 'info' = 'debug'): {
  log: Logger
  lines: Record<string, unknown>[]
} {
  const lines: Record<string, unknown>[] = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line) lines.push(JSON.parse(line) as Record<string, unknown>)
      done()
    },
  })
  return { log: createLogger(level, stream), lines }
}
