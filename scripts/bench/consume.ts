import type { Sequelize } from 'sequelize'
import { benchBullmq } from './bullmq.js'
import { messagesFor, progress, publishWith, streamKey, type Context } from './context.js'
import { consumeRows, runsVariant, VARIANTS, type Key, type Sample } from './consumeRows.js'
import { BATCH_SIZE, BLOCK_MS, READERS, THREADS, startDaemon } from './daemon.js'
import { openMigrated, waitForCount, withDatabase, type BenchDatabase } from './database.js'
import { benchRaw } from './raw.js'
import { deleteStream, steadyRate, waitDrained } from './redis.js'
import { fmt, type Row } from './stats.js'

/**
 * Jobs of the BullMQ sandboxed side: fewer than the others so the whole suite stays within its time
 * budget (a run of it is ~10× slower than inline); throughput is a rate, the ratio stays fair.
 */
export const SANDBOXED_JOBS = (messages: number) => Math.min(messages, 20_000)

const ACKED_ROWS = `SELECT count(*) AS n FROM redis_message_backup WHERE status = 'acked'`

/**
 * Consume throughput of a pre-filled stream (filled through the publisher, with the backup when the
 * store is on, so every confirmation has a row to update): the raw ceiling without and with the backup
 * confirmation (UPDATE … ANY before each XACK, on the same kind of database), and the daemon as a child
 * process with the store off and on (a fresh database per run), each with deduplication at its default
 * (dedupeTtlMs 1 h) and off; and BullMQ on the same Redis (a queue pre-filled with addBulk, a Worker at
 * concurrency 50 in a child process, inline and sandboxed in worker threads).
 */
export async function consumeScenario(ctx: Context): Promise<Row[]> {
  const n = ctx.options.messages
  const samples = Object.fromEntries(VARIANTS.map((v) => [v.key, [] as Sample[]])) as Record<Key, Sample[]>
  const variants = VARIANTS.filter((v) => runsVariant(v, ctx.options.dedupeOff))
  for (let run = 1; run <= ctx.options.runs; run++) {
    for (let k = 0; k < variants.length; k++) {
      const variant = variants[(k + run - 1) % variants.length]!
      const stream = streamKey(ctx, 'consume', run, variant.key)
      try {
        let sample: Sample
        if (variant.kind === 'bullmq') {
          const jobs = variant.processor === 'sandboxed' ? SANDBOXED_JOBS(n) : n
          sample = await benchBullmq(ctx.redis, stream, jobs, variant.processor)
        } else if (!variant.store) {
          await fill(null, stream, n)
          sample =
            variant.kind === 'raw'
              ? await benchRaw(stream, n)
              : await daemonRun(ctx, stream, n, variant.key, variant.dedupeTtlMs)
        } else {
          sample = await withDatabase(async (db) => {
            const store = await openMigrated(db)
            try {
              await fill(store, stream, n)
              if (variant.kind === 'raw') return await benchRaw(stream, n, db.url)
              return await daemonRun(ctx, stream, n, variant.key, variant.dedupeTtlMs, { db, store })
            } finally {
              await store.close()
            }
          })
        }
        samples[variant.key].push(sample)
        progress(
          `consume run ${run}/${ctx.options.runs} ${variant.label}: ${fmt(sample.steady)} msgs/s steady` +
            (sample.confirmed ? `, ${fmt(sample.confirmed)} confirmed in PostgreSQL` : '') +
            `, ${fmt(sample.wall)} wall`,
        )
      } finally {
        await deleteStream(ctx.redis, stream)
      }
    }
  }
  return consumeRows(samples)
}

/** Fills the stream through the publisher; with a store every message gets its backup row first. */
function fill(store: Sequelize | null, stream: string, n: number): Promise<string[]> {
  return publishWith(store, messagesFor(stream, n))
}

async function daemonRun(
  ctx: Context,
  stream: string,
  n: number,
  key: Key,
  dedupeTtlMs: number | undefined,
  withStore?: { db: BenchDatabase; store: Sequelize },
): Promise<Sample> {
  const daemon = startDaemon({
    stream,
    tmp: ctx.tmp,
    label: `consume-${key}-${stream.split(':').at(-2)}`,
    consumer: {
      batchSize: BATCH_SIZE,
      concurrency: THREADS,
      blockMs: BLOCK_MS,
      readers: READERS,
      ...(dedupeTtlMs === undefined ? {} : { dedupeTtlMs }),
    },
    databaseUrl: withStore?.db.url,
    cpuProf: ctx.options.cpuProf,
  })
  try {
    const drain = await waitDrained(ctx.redis, stream, n, { started: daemon.started, alive: daemon.check })
    const sample: Sample = {
      steady: steadyRate(n, drain, daemon.started),
      wall: (n * 1000) / (drain.done - daemon.started),
      startupMs: (drain.firstAck?.at ?? drain.done) - daemon.started,
    }
    if (withStore) {
      const confirmedAt = await waitForCount(withStore.store, ACKED_ROWS, [], (c) => c >= n, {
        what: 'every backup row acked',
      })
      sample.confirmed = steadyRate(n, drain, daemon.started, confirmedAt)
    }
    return sample
  } finally {
    await daemon.stop()
  }
}
