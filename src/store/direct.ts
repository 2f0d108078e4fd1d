import { finished } from 'node:stream/promises'
import { from as copyFrom, type CopyStreamQuery } from 'pg-copy-streams'
import type { Sequelize } from 'sequelize'

/** What the pool hands out for PostgreSQL: a pg client. */
interface PgClient {
  query(sql: string, params: unknown[]): Promise<{ rowCount: number | null }>
  query(copy: CopyStreamQuery): CopyStreamQuery
}

/**
 * Runs `work` on a connection of the store's pool, straight through pg, and gives the connection back
 * to the same pool (one pg marked broken is dropped there). For the publish hot path only:
 * sequelize's query() scans every string parameter for NUL, rewrites the bind list and captures a
 * stack per call — about 1 ms per publish batch of 500, a fifth of the INSERT.
 */
async function withClient<T>(store: Sequelize, work: (client: PgClient) => Promise<T>): Promise<T> {
  const manager = store.connectionManager
  const client = (await manager.getConnection({ type: 'write' })) as unknown as PgClient
  try {
    return await work(client)
  } finally {
    manager.releaseConnection(client)
  }
}

/** One statement; resolves with the number of rows it affected. */
export function directQuery(store: Sequelize, sql: string, params: unknown[]): Promise<number> {
  return withClient(store, async (client) => (await client.query(sql, params)).rowCount ?? 0)
}

/**
 * `COPY … FROM STDIN` of rows already in COPY's text format (copyLine()); resolves once PostgreSQL
 * committed them, with their count. A failure (a duplicate key, say) rolls the whole COPY back.
 */
export function directCopy(store: Sequelize, sql: string, text: string): Promise<number> {
  return withClient(store, async (client) => {
    const stream = client.query(copyFrom(sql))
    stream.end(text)
    await finished(stream)
    return stream.rowCount
  })
}

const SPECIAL = /[\\\n\r\t]/
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' }

/**
 * One row in COPY's text format: tab-separated, newline-terminated, with backslash, newline, carriage
 * return and tab escaped. No value may hold NUL (the publish path refuses it) or stand for NULL.
 */
export function copyLine(values: string[]): string {
  let line = ''
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!
    line += (i === 0 ? '' : '\t') + (SPECIAL.test(v) ? v.replace(/[\\\n\r\t]/g, (ch) => ESCAPES[ch]!) : v)
  }
  return `${line}\n`
}
