import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { Redis } from 'ioredis'
import pg from 'pg'
import { Piscina } from 'piscina'
import { BATCH_SIZE, BLOCK_MS, ROOT, THREADS } from './daemon.js'
import { GROUP, REDIS_URL, RUN_TIMEOUT_MS, drained, groupState } from './redis.js'

const RAW_WORKER = path.join(ROOT, 'scripts/bench/rawWorker.mjs')

/** The confirmation the daemon's store side writes per ack batch (src/store/backup.ts). */
const CONFIRM = `UPDATE redis_message_backup SET status = 'acked', acked_at = now()
 WHERE message_id = ANY($1) AND status <> 'acked'`

export interface RawSample {
  steady: number
  wall: number
}

type Entry = [string, string[]]

/** The message id of an entry as ioredis returns it (`id` is the publisher's first field). */
const messageId = ([entryId, fields]: Entry) => {
  const at = fields.indexOf('id')
  return at >= 0 && at % 2 === 0 ? fields[at + 1]! : entryId
}

/**
 * The raw ceiling: the same work as the daemon with nothing but ioredis and Piscina, in this process —
 * a bare loop XREADGROUP (COUNT 500) → one Piscina task (2 threads) → XACK, strictly serial. With
 * `databaseUrl`, each batch's backup rows are confirmed (one `UPDATE … ANY`, synchronous_commit off as
 * the daemon's confirmer sets it) before its XACK: the ceiling of backup confirmation.
 */
export async function benchRaw(stream: string, n: number, databaseUrl?: string): Promise<RawSample> {
  const redis = new Redis(REDIS_URL)
  await redis.xgroup('CREATE', stream, GROUP, '0')
  let db: pg.Client | undefined
  if (databaseUrl) {
    db = new pg.Client({ connectionString: databaseUrl, application_name: 'ackstate-bench-raw' })
    await db.connect()
    await db.query('SET synchronous_commit = off')
  }
  const started = performance.now()
  const pool = new Piscina({ filename: RAW_WORKER, minThreads: THREADS, maxThreads: THREADS })
  try {
    let acked = 0
    let firstAck: { at: number; acked: number } | undefined
    while (acked < n) {
      if (performance.now() - started > RUN_TIMEOUT_MS)
        throw new Error(`raw loop did not drain in ${RUN_TIMEOUT_MS} ms`)
      const reply = (await redis.xreadgroup(
        'GROUP',
        GROUP,
        'raw',
        'COUNT',
        BATCH_SIZE,
        'BLOCK',
        BLOCK_MS,
        'STREAMS',
        stream,
        '>',
      )) as [string, Entry[]][] | null
      const entries = reply?.[0]?.[1]
      if (!entries || entries.length === 0) continue
      const results = (await pool.run(entries)) as { entryId: string; ok: boolean }[]
      const ok = new Set(results.filter((r) => r.ok).map((r) => r.entryId))
      const handled = entries.filter(([entryId]) => ok.has(entryId))
      if (db && handled.length > 0) {
        const { rowCount } = await db.query(CONFIRM, [handled.map(messageId)])
        if (rowCount !== handled.length)
          throw new Error(`raw loop confirmed ${rowCount} backup rows of ${handled.length} handled`)
      }
      if (handled.length > 0) await redis.xack(stream, GROUP, ...handled.map(([entryId]) => entryId))
      acked += handled.length
      firstAck ??= { at: performance.now(), acked }
    }
    const done = performance.now()
    if (!drained(await groupState(redis, stream), n))
      throw new Error('raw loop finished but the group is not drained')
    const steady =
      done > firstAck!.at
        ? ((n - firstAck!.acked) * 1000) / (done - firstAck!.at)
        : (n * 1000) / (done - started)
    return { steady, wall: (n * 1000) / (done - started) }
  } finally {
    await pool.destroy()
    await db?.end()
    redis.disconnect()
  }
}
