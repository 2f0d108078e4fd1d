import type { Sequelize } from 'sequelize'
import { messagesFor, progress, publishAll, publisherFor, streamKey, type Context } from './context.js'
import { startDaemon } from './daemon.js'
import { openMigrated, waitForCount, withDatabase, type BenchDatabase } from './database.js'
import { benchRaw } from './raw.js'
import { deleteStream, steadyRate, waitDrained } from './redis.js'
import { fmt, pairedRatios, summarise, type Row, type Target } from './stats.js'

/** The consume variants, run in turn within each run (the starting one rotates per run). */
const VARIANTS = [
  { key: 'raw', label: 'raw XREADGROUP→Piscina→XACK' },
  { key: 'off', label: 'daemon, store off', store: false, dedupeTtlMs: undefined },
  { key: 'off0', label: 'daemon, store off, dedupeTtlMs 0', store: false, dedupeTtlMs: 0 },
  { key: 'on', label: 'daemon, store on', store: true, dedupeTtlMs: undefined },
  { key: 'on0', label: 'daemon, store on, dedupeTtlMs 0', store: true, dedupeTtlMs: 0 },
] as const
type Key = (typeof VARIANTS)[number]['key']

interface Sample {
  /** msgs/s from the first ack to the last (XINFO GROUPS). */
  steady: number
  /** msgs/s from spawn (raw: pool creation) to the last ack. */
  wall: number
  /** Daemon: ms from spawn to the first ack seen. */
  startupMs?: number
  /** Store on: msgs/s from the first ack until every backup row is acked in PostgreSQL. */
  confirmed?: number
}

const ACKED_ROWS = `SELECT count(*) AS n FROM redis_message_backup WHERE status = 'acked'`

/**
 * Consume throughput of a pre-filled stream (filled through the publisher, with the backup when the
 * store is on, so every confirmation has a row to update): the raw ceiling, and the daemon as a child
 * process with the store off and on (a fresh database per run), each with deduplication at its default
 * (dedupeTtlMs 1 h) and off.
 */
export async function consumeScenario(ctx: Context): Promise<Row[]> {
  const n = ctx.options.messages
  const samples = Object.fromEntries(VARIANTS.map((v) => [v.key, [] as Sample[]])) as Record<Key, Sample[]>
  for (let run = 1; run <= ctx.options.runs; run++) {
    for (let k = 0; k < VARIANTS.length; k++) {
      const variant = VARIANTS[(k + run - 1) % VARIANTS.length]!
      const stream = streamKey(ctx, 'consume', run, variant.key)
      let ids: string[] = []
      try {
        let sample: Sample
        if (variant.key === 'raw') {
          ids = await fill(null, stream, n)
          sample = await benchRaw(stream, n)
        } else if (!variant.store) {
          ids = await fill(null, stream, n)
          sample = await daemonRun(ctx, stream, n, variant.key, variant.dedupeTtlMs)
        } else {
          sample = await withDatabase(async (db) => {
            const store = await openMigrated(db)
            try {
              ids = await fill(store, stream, n)
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
        await deleteStream(ctx.redis, stream, ids)
      }
    }
  }
  return rows(samples)
}

/** Fills the stream through the publisher; with a store every message gets its backup row first. */
async function fill(store: Sequelize | null, stream: string, n: number): Promise<string[]> {
  const publisher = publisherFor(store)
  try {
    return await publishAll(publisher, messagesFor(stream, n))
  } finally {
    // Hands the rows over (marked sent), as a publisher that is done does.
    await publisher.close()
  }
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
      batchSize: 500,
      concurrency: 2,
      blockMs: 100,
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

function rows(samples: Record<Key, Sample[]>): Row[] {
  const of = (key: Key, field: keyof Sample) => samples[key].map((s) => s[field] ?? NaN)
  const out: Row[] = []
  for (const v of VARIANTS) {
    out.push({
      scenario: 'consume',
      metric: `${v.label}: steady`,
      unit: 'msgs/s',
      summary: summarise(of(v.key, 'steady')),
    })
    if (v.key === 'on' || v.key === 'on0')
      out.push({
        scenario: 'consume',
        metric: `${v.label}: confirmed in PostgreSQL`,
        unit: 'msgs/s',
        summary: summarise(of(v.key, 'confirmed')),
      })
    out.push({
      scenario: 'consume',
      metric: `${v.label}: wall`,
      unit: 'msgs/s',
      summary: summarise(of(v.key, 'wall')),
    })
    if (v.key !== 'raw')
      out.push({
        scenario: 'consume',
        metric: `${v.label}: start-up, spawn → first ack`,
        unit: 'ms',
        summary: summarise(of(v.key, 'startupMs')),
      })
  }
  const ratio = (metric: string, a: number[], b: number[], target?: Target): Row => ({
    scenario: 'consume',
    metric,
    unit: '×',
    summary: summarise(pairedRatios(a, b)),
    ...(target ? { target } : {}),
  })
  const seventy: Target = { op: '>=', bound: 0.7 }
  out.push(
    ratio('ratio daemon/raw, steady (dedupe 1 h)', of('off', 'steady'), of('raw', 'steady')),
    ratio('ratio daemon/raw, steady (dedupeTtlMs 0)', of('off0', 'steady'), of('raw', 'steady')),
    ratio('ratio store on/off, steady (dedupe 1 h)', of('on', 'steady'), of('off', 'steady'), seventy),
    ratio('ratio store on/off, confirmed (dedupe 1 h)', of('on', 'confirmed'), of('off', 'steady'), seventy),
    ratio('ratio store on/off, steady (dedupeTtlMs 0)', of('on0', 'steady'), of('off0', 'steady'), seventy),
    ratio(
      'ratio store on/off, confirmed (dedupeTtlMs 0)',
      of('on0', 'confirmed'),
      of('off0', 'steady'),
      seventy,
    ),
  )
  return out
}
