import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Sequelize } from 'sequelize'
import { encodeAll, progress, streamKey, type Context } from './context.js'
import { BATCH_SIZE, BLOCK_MS, THREADS, startDaemon, type Daemon } from './daemon.js'
import { openMigrated, withDatabase } from './database.js'
import { deleteStream, groupState, waitForGroup, xaddAll } from './redis.js'
import { fmt, rowsOf, type Row } from './stats.js'

/**
 * Messages through the daemon per run: five times --messages (500k by default; the issue asks for 1M,
 * halved so the whole suite fits its 10 minutes on 2 cores — a run of 1M took ~70 s on a loaded machine).
 */
export const memoryMessages = (messages: number) => messages * 5
/** RSS counted as warm once this many messages were acked. */
export const WARM_AT = (total: number) => Math.min(50_000, Math.floor(total / 20))
/** Messages fed per chunk (backup rows, then XADD); the next waits until the backlog is below one. */
export const CHUNK = 25_000
const SAMPLE_MS = 100
const RUN_TIMEOUT_MS = 240_000

/** VmRSS and VmHWM (peak) of a process, in MiB, from /proc/<pid>/status. */
export function rssOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN)
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 }
}

interface Sample {
  warm: number
  end: number
  peak: number
  rate: number
}

/**
 * Memory of one daemon (store on, dedupeTtlMs 0) pushing `memoryMessages` tiny messages through: the
 * daemon starts on an empty stream and database, then the bench feeds CHUNK messages at a time — their
 * backup rows (status sent, as the publisher leaves them; one INSERT … SELECT generate_series) then
 * their entries (pipelined XADD) — whenever the backlog is below a chunk, so Redis holds little. The
 * daemon's VmRSS is sampled every SAMPLE_MS: warm once WARM_AT messages were acked, end when all were;
 * peak is the kernel's VmHWM.
 */
export async function memoryScenario(ctx: Context): Promise<Row[]> {
  const total = memoryMessages(ctx.options.messages)
  const samples: Sample[] = []
  for (let run = 1; run <= ctx.options.runs; run++) {
    const stream = streamKey(ctx, 'memory', run, 'on')
    try {
      const sample = await withDatabase(async (db) => {
        const store = await openMigrated(db)
        const daemon = startDaemon({
          stream,
          tmp: ctx.tmp,
          label: `memory-${run}`,
          consumer: { batchSize: BATCH_SIZE, concurrency: THREADS, blockMs: BLOCK_MS, dedupeTtlMs: 0 },
          databaseUrl: db.url,
          cpuProf: ctx.options.cpuProf,
        })
        try {
          await waitForGroup(ctx.redis, stream, { started: daemon.started, alive: daemon.check })
          return await feedAndWatch(ctx, store, daemon, stream, total)
        } finally {
          await daemon.stop()
          await store.close()
        }
      })
      samples.push(sample)
      progress(
        `memory run ${run}/${ctx.options.runs}: RSS ${sample.warm.toFixed(1)} MiB warm, ${sample.end.toFixed(1)} MiB ` +
          `after ${fmt(total)} messages (peak ${sample.peak.toFixed(1)} MiB), ${fmt(sample.rate)} msgs/s`,
      )
    } finally {
      await deleteStream(ctx.redis, stream)
    }
  }
  const row = rowsOf('memory')
  const warmAt = fmt(WARM_AT(total))
  return [
    row(
      `daemon RSS after ${warmAt} messages (warm)`,
      'MiB',
      samples.map((s) => s.warm),
    ),
    row(
      `daemon RSS after ${fmt(total)} messages`,
      'MiB',
      samples.map((s) => s.end),
    ),
    row(
      `RSS growth, warm → ${fmt(total)} messages`,
      '%',
      samples.map((s) => ((s.end - s.warm) / s.warm) * 100),
      { op: '<=', bound: 10 },
    ),
    row(
      'daemon peak RSS (VmHWM)',
      'MiB',
      samples.map((s) => s.peak),
    ),
    row(
      'throughput while fed in chunks, first → last ack',
      'msgs/s',
      samples.map((s) => s.rate),
    ),
  ]
}

async function feedAndWatch(
  ctx: Context,
  store: Sequelize,
  daemon: Daemon,
  stream: string,
  total: number,
): Promise<Sample> {
  const pid = daemon.pid!
  const tag = stream.split(':').slice(1).join('-')
  let fed = 0
  let acked = 0
  let warm: number | undefined
  let firstAck: { at: number; acked: number } | undefined
  const started = performance.now()
  while (acked < total) {
    if (performance.now() - started > RUN_TIMEOUT_MS)
      throw new Error(`memory: ${fmt(acked)} of ${fmt(total)} acked after ${RUN_TIMEOUT_MS} ms`)
    const dead = await daemon.check()
    if (dead) throw new Error(dead)
    const state = await groupState(ctx.redis, stream)
    acked = state ? state.entriesRead - state.pending : 0
    if (acked > 0) firstAck ??= { at: performance.now(), acked }
    if (warm === undefined && acked >= WARM_AT(total)) warm = rssOf(pid).rss
    if (fed < total && fed - acked < CHUNK) {
      const n = Math.min(CHUNK, total - fed)
      await feed(ctx, store, stream, tag, fed, n)
      fed += n
    } else {
      await sleep(SAMPLE_MS)
    }
  }
  const done = performance.now()
  const { rss: end, peak } = rssOf(pid)
  const rate = ((total - firstAck!.acked) * 1000) / (done - firstAck!.at)
  return { warm: warm!, end, peak, rate }
}

/** Messages from..from+n-1: their backup rows (sent), then their entries, with ids `<tag>-<k>`. */
async function feed(ctx: Context, store: Sequelize, stream: string, tag: string, from: number, n: number) {
  await store.query(
    `INSERT INTO redis_message_backup (message_id, stream, payload, status, sent_at)
     SELECT $1 || '-' || g, $2, '{"n":' || g || ',"total":42}', 'sent', now()
     FROM generate_series($3::int, $4::int) AS g`,
    { bind: [tag, stream, from, from + n - 1] },
  )
  const messages = Array.from({ length: n }, (_, k) => ({
    stream,
    id: `${tag}-${from + k}`,
    payload: { n: from + k, total: 42 },
  }))
  await xaddAll(ctx.redis, stream, encodeAll(messages).entries)
}
