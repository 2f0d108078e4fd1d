import { performance } from 'node:perf_hooks'
import { Redis } from 'ioredis'
import type { Sequelize } from 'sequelize'
import {
  encodeAll,
  messagesFor,
  progress,
  publishAll,
  publisherFor,
  streamKey,
  type Context,
} from './context.js'
import { encodeMessage, toRow } from '../../src/publishMessage.js'
import { insertBackups } from '../../src/store/backup.js'
import { openMigrated, withDatabase } from './database.js'
import { REDIS_URL, deleteStream, xaddAll } from './redis.js'
import { fmt, pairedRatios, summarise, type Row } from './stats.js'

/** Messages per publishMany() call (and per XADD pipeline on the baseline side). */
export const PUBLISH_BATCH = 500
/** Calls in flight at once on the concurrent side of each pair (an application serving requests). */
export const CALLERS = 4

interface Figures {
  xadd: number[]
  publisher: number[]
  closed: number[]
  /** The publisher's backup statement alone (COPY, no XADD), one caller: measured on that side only. */
  copy: number[]
}

/**
 * Publish throughput: `publisher.publishMany()` with the backup (one INSERT, then one XADD script call per
 * batch of 500) against a plain pipelined XADD of the same entries, encoded beforehand, 500 per round
 * trip — once with one caller awaiting each batch before the next, once with CALLERS callers in flight
 * on one publisher (one connection, the store's pool) and on one XADD connection. Each pair runs in
 * each run, alternating which side goes first, on a fresh database per run. A publisher with a
 * heartbeat marks nothing per batch; its close() marks the rows no consumer acked yet (here: all of
 * them) sent in one statement, timed separately.
 *
 * With one caller the backup's COPY of each batch is also timed alone (the publisher's own statement,
 * no XADD): a publish commits its rows before it sends them (ARCHITECTURE invariant 3), so COPY then
 * the plain XADD in series, over XADD alone, shows how much room the COPY leaves one caller. Not a
 * strict bound: the publisher's XADD script costs its client less than the plain pipeline does.
 */
export async function publishScenario(ctx: Context): Promise<Row[]> {
  const serial: Figures = { xadd: [], publisher: [], closed: [], copy: [] }
  const concurrent: Figures = { xadd: [], publisher: [], closed: [], copy: [] }
  for (let run = 1; run <= ctx.options.runs; run++) {
    await withDatabase(async (db) => {
      const store = await openMigrated(db)
      try {
        await measurePair(ctx, store, run, 1, serial)
        await store.query('TRUNCATE redis_message_backup')
        await measureCopy(ctx, store, run, serial)
        await store.query('TRUNCATE redis_message_backup')
        await measurePair(ctx, store, run, CALLERS, concurrent)
      } finally {
        await store.close()
      }
    })
    const line = (f: Figures) =>
      `xadd ${fmt(f.xadd.at(-1)!)}, publisher ${fmt(f.publisher.at(-1)!)} (${fmt(f.closed.at(-1)!)} incl. close())`
    progress(
      `publish run ${run}/${ctx.options.runs} msgs/s: 1 caller ${line(serial)}, COPY alone ${fmt(serial.copy.at(-1)!)}; ${CALLERS} callers ${line(concurrent)}`,
    )
  }
  return [...rows(serial, 1), ...rows(concurrent, CALLERS)]
}

async function measurePair(ctx: Context, store: Sequelize, run: number, callers: number, into: Figures) {
  const n = ctx.options.messages
  const redis = new Redis(REDIS_URL)
  try {
    const sides = run % 2 === 1 ? (['xadd', 'publisher'] as const) : (['publisher', 'xadd'] as const)
    for (const side of sides) {
      const stream = streamKey(ctx, `publish-${callers}`, run, side)
      const messages = messagesFor(stream, n)
      try {
        if (side === 'xadd') {
          const { entries } = encodeAll(messages)
          const t0 = performance.now()
          await xaddAll(redis, stream, entries, PUBLISH_BATCH, callers)
          into.xadd.push((n * 1000) / (performance.now() - t0))
        } else {
          const pub = publisherFor(store)
          let closed = false
          try {
            const t0 = performance.now()
            await publishAll(pub, messages, PUBLISH_BATCH, callers)
            const t1 = performance.now()
            // close() hands the rows over (marked sent): with no consumer running, that is all of them.
            await pub.close()
            closed = true
            into.publisher.push((n * 1000) / (t1 - t0))
            into.closed.push((n * 1000) / (performance.now() - t0))
          } finally {
            if (!closed) await pub.close()
          }
          const [found] = (await store.query('SELECT count(*) AS n FROM redis_message_backup')) as [
            { n: string }[],
            unknown,
          ]
          if (Number(found[0]?.n) !== n) throw new Error(`expected ${n} backup rows, found ${found[0]?.n}`)
        }
        const length = await ctx.redis.xlen(stream)
        if (length !== n) throw new Error(`${stream} holds ${length} entries, expected ${n}`)
      } finally {
        await deleteStream(ctx.redis, stream)
      }
    }
  } finally {
    redis.disconnect()
  }
}

/** The backup rows of the same messages, COPYed in batches by one caller, as publishMany() writes them. */
async function measureCopy(ctx: Context, store: Sequelize, run: number, into: Figures) {
  const n = ctx.options.messages
  const stream = streamKey(ctx, 'publish-copy', run, 'copy')
  const rows = messagesFor(stream, n).map((m) => toRow({ ...encodeMessage(m), stream }))
  const t0 = performance.now()
  for (let start = 0; start < n; start += PUBLISH_BATCH) {
    await insertBackups(store, rows.slice(start, start + PUBLISH_BATCH), 'bench-copy')
  }
  into.copy.push((n * 1000) / (performance.now() - t0))
}

function rows(f: Figures, callers: number): Row[] {
  const who = callers === 1 ? '1 caller' : `${callers} callers`
  const batch = `batches of ${PUBLISH_BATCH}, ${who}`
  return [
    {
      scenario: 'publish',
      metric: `plain pipelined XADD, ${batch}`,
      unit: 'msgs/s',
      summary: summarise(f.xadd),
    },
    {
      scenario: 'publish',
      metric: `publishMany() + backup, ${batch}`,
      unit: 'msgs/s',
      summary: summarise(f.publisher),
    },
    {
      scenario: 'publish',
      metric: `publishMany() + backup, ${who}, until close() handed every row over`,
      unit: 'msgs/s',
      summary: summarise(f.closed),
    },
    {
      scenario: 'publish',
      metric: `ratio publishMany+backup / XADD, ${who}`,
      unit: '×',
      summary: summarise(pairedRatios(f.publisher, f.xadd)),
      target: { op: '>=', bound: 0.5 },
    },
    ...(callers === 1 ? boundRows(f) : []),
  ]
}

/** COPY alone, and the ratio of COPY then plain XADD in series: 1/(1/COPY + 1/XADD) over XADD. */
function boundRows(f: Figures): Row[] {
  return [
    {
      scenario: 'publish',
      metric: `backup COPY alone (no XADD), batches of ${PUBLISH_BATCH}, 1 caller`,
      unit: 'msgs/s',
      summary: summarise(f.copy),
    },
    {
      scenario: 'publish',
      metric: 'ratio COPY then plain XADD in series / XADD, 1 caller',
      unit: '×',
      summary: summarise(f.copy.map((copy, i) => copy / (copy + f.xadd[i]!))),
    },
  ]
}
