import { fork } from 'node:child_process'
import { once } from 'node:events'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { CONSUMER_NUMBERS } from '../../src/consumerConfig.js'
import { dropQueue, openQueue, startBullWorker } from './bullmq.js'
import { epochNow, progress, publisherFor, streamKey, type Context } from './context.js'
import { ROOT, RECORD_HANDLER, SEEN_FILE_ENV, THREADS, startDaemon } from './daemon.js'
import { GROUP, REDIS_URL, deleteStream, waitForGroup } from './redis.js'
import { describeSpread, parseSeen, pushSpread, spread, spreadRows, waitForLines } from './seen.js'
import type { Row } from './stats.js'

/** The publish rate, how long it lasts, and the pacing: PER_TICK messages every TICK_MS. */
export const RATE = 2_000
export const DURATION_MS = 10_000
/** Published before the measured window and left out of the figures (cold code paths, new threads). */
export const WARMUP_MS = 1_000
const TICK_MS = 10
const PER_TICK = (RATE * TICK_MS) / 1000
const TOTAL = ((WARMUP_MS + DURATION_MS) / 1000) * RATE

/**
 * Calls `send(tick, t, warm)` every TICK_MS against a fixed schedule (a late tick does not push the later
 * ones back), t being the epoch ms of the call and warm true for the WARMUP_MS of ticks first, until
 * WARMUP_MS + DURATION_MS of ticks were sent. Resolves with the t of the first measured tick and how long
 * sending took.
 */
async function paced(send: (tick: number, t: number, warm: boolean) => Promise<void>) {
  const ticks = TOTAL / PER_TICK
  const warmTicks = WARMUP_MS / TICK_MS
  const start = performance.now()
  let measuredFrom = Infinity
  for (let tick = 0; tick < ticks; tick++) {
    const wait = start + tick * TICK_MS - performance.now()
    if (wait > 0) await sleep(wait)
    const t = epochNow()
    if (tick === warmTicks) measuredFrom = t
    await send(tick, t, tick < warmTicks)
  }
  return { measuredFrom, tookMs: performance.now() - start }
}

/**
 * Publish → handler-start latency at RATE msgs/s for DURATION_MS, PER_TICK messages per publishMany()
 * every TICK_MS, each carrying its publish time (epoch ms) in the payload. ackstate: a running daemon
 * (store off: Redis → Piscina, the path the target is about; consumer defaults) whose handler records
 * when it started (scripts/bench/recordSeen.mjs). Raw: the bare XREADGROUP → Piscina → XACK loop with
 * the daemon's defaults and the same handler, in a process of its own — the floor this machine allows.
 * BullMQ: a running Worker at concurrency 50 with an inline processor that does the same, jobs added
 * with addBulk. With `--dedupe-off` also the daemon with dedupeTtlMs 0: what the deduplication claim,
 * made by Redis behind every read (src/redis/freshClaims.ts), adds to a message's way. The sides
 * rotate which goes first.
 */
export async function latencyScenario(ctx: Context): Promise<Row[]> {
  const figures = { ackstate: spread(), ackstate0: spread(), raw: spread(), bullmq: spread() }
  const measure = {
    ackstate: ackstateSide(undefined),
    ackstate0: ackstateSide(0),
    raw: rawSide,
    bullmq: bullmqSide,
  }
  const order = ctx.options.dedupeOff
    ? (['ackstate', 'ackstate0', 'raw', 'bullmq'] as const)
    : (['ackstate', 'raw', 'bullmq'] as const)
  for (let run = 1; run <= ctx.options.runs; run++) {
    // Each run starts with another side, so no side always runs first (or last) on a warming machine.
    const sides = order.map((_, i) => order[(i + run - 1) % order.length]!)
    for (const side of sides) {
      const { latencies, tookMs } = await measure[side](ctx, run)
      const into = figures[side]
      pushSpread(into, latencies)
      const late = tookMs - (WARMUP_MS + DURATION_MS)
      if (late > 1_000)
        ctx.notes.push(
          `latency run ${run} (${side}): publishing fell ${Math.round(late)} ms behind its schedule (a loaded machine).`,
        )
      progress(`latency run ${run}/${ctx.options.runs} ${side}: ${describeSpread(into)}`)
    }
  }
  return [
    ...spreadRows('latency', (p) => `publish → handler start ${p}, daemon (store off)`, figures.ackstate, 5),
    ...(ctx.options.dedupeOff
      ? spreadRows(
          'latency',
          (p) => `publish → handler start ${p}, daemon (store off, dedupeTtlMs 0)`,
          figures.ackstate0,
        )
      : []),
    ...spreadRows('latency', (p) => `publish → handler start ${p}, raw XREADGROUP→Piscina→XACK`, figures.raw),
    ...spreadRows(
      'latency',
      (p) => `publish → processor start ${p}, BullMQ Worker c50 inline`,
      figures.bullmq,
    ),
  ]
}

/**
 * Publishes the paced load to `stream` (the messages carry their publish time) with a publisher of its
 * own, then waits until the handler recorded every message in `seenFile`; resolves with the latencies
 * of the messages published after the warm-up.
 */
async function publishAndSee(stream: string, seenFile: string, check: () => Promise<string | null>) {
  const publisher = publisherFor(null)
  let sending
  try {
    sending = await paced(async (tick, t) => {
      const messages = Array.from({ length: PER_TICK }, (_, k) => ({
        stream,
        payload: { n: tick * PER_TICK + k, t },
      }))
      await publisher.publishMany(messages)
    })
  } finally {
    await publisher.close()
  }
  const seen = parseSeen(await waitForLines(seenFile, TOTAL, check, 60_000), TOTAL)
  const measured = seen.filter((s) => s.sent >= sending.measuredFrom)
  return { latencies: measured.map((s) => s.seen - s.sent), tookMs: sending.tookMs }
}

/** The daemon's side: its consumer defaults, with `dedupeTtlMs` over them when given. */
const ackstateSide = (dedupeTtlMs: number | undefined) => async (ctx: Context, run: number) => {
  const side = dedupeTtlMs === undefined ? 'ackstate' : `ackstate-dedupe${dedupeTtlMs}`
  const stream = streamKey(ctx, 'latency', run, side)
  const seenFile = path.join(ctx.tmp, `latency-${side}-${run}.txt`)
  try {
    const daemon = startDaemon({
      stream,
      tmp: ctx.tmp,
      label: `latency-${side}-${run}`,
      handler: RECORD_HANDLER,
      consumer: dedupeTtlMs === undefined ? {} : { dedupeTtlMs },
      env: { [SEEN_FILE_ENV]: seenFile },
      cpuProf: ctx.options.cpuProf,
    })
    try {
      await waitForGroup(ctx.redis, stream, { started: daemon.started, alive: daemon.check })
      return await publishAndSee(stream, seenFile, daemon.check)
    } finally {
      await daemon.stop()
    }
  } finally {
    await deleteStream(ctx.redis, stream)
  }
}

/**
 * The raw path the target is measured against: scripts/bench/rawLatency.mjs in a process of its own
 * (XREADGROUP → one Piscina task → XACK, nothing else) running the same recording handler.
 */
async function rawSide(ctx: Context, run: number) {
  const stream = streamKey(ctx, 'latency', run, 'raw')
  const seenFile = path.join(ctx.tmp, `latency-raw-${run}.txt`)
  // The daemon's consumer defaults, which the raw loop copies.
  const { batchSize, blockMs } = CONSUMER_NUMBERS
  const args = [REDIS_URL, stream, GROUP, batchSize.default, blockMs.default, THREADS].map(String)
  const child = fork(path.join(ROOT, 'scripts/bench/rawLatency.mjs'), args, {
    env: { ...process.env, [SEEN_FILE_ENV]: seenFile },
    stdio: ['ignore', 2, 2, 'ipc'],
  })
  let exited: string | null = null
  child.once('exit', (code, signal) => {
    exited = `the raw latency loop exited (${code ?? signal})`
  })
  try {
    await Promise.race([
      once(child, 'message'),
      once(child, 'exit').then(() => Promise.reject(new Error(exited ?? 'the raw latency loop exited'))),
    ])
    return await publishAndSee(stream, seenFile, () => Promise.resolve(exited))
  } finally {
    child.kill()
    await deleteStream(ctx.redis, stream)
  }
}

async function bullmqSide(ctx: Context, run: number) {
  const prefix = streamKey(ctx, 'latency', run, 'bullmq')
  const queue = openQueue(prefix)
  try {
    const worker = startBullWorker(prefix, TOTAL, 'latency')
    try {
      await worker.ready
      // The worker records only the jobs published after the warm-up (w false).
      const sending = await paced((tick, t, w) =>
        queue
          .addBulk(
            Array.from({ length: PER_TICK }, (_, k) => ({
              name: 'bench',
              data: { n: tick * PER_TICK + k, t, w },
            })),
          )
          .then(() => undefined),
      )
      const { latencies } = await worker.done
      if (!latencies) throw new Error('the BullMQ worker sent no latencies')
      return { latencies, tookMs: sending.tookMs }
    } finally {
      await worker.stop()
    }
  } finally {
    await dropQueue(ctx.redis, queue, prefix)
  }
}
