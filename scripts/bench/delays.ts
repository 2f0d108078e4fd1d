import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { createPublisher } from '../../src/publish.js'
import { benchLogger, messagesFor, progress, streamKey, type Context } from './context.js'
import { RECORD_HANDLER, SEEN_FILE_ENV, startDaemon } from './daemon.js'
import { withDatabase } from './database.js'
import { REDIS_URL, deleteStream, groupState } from './redis.js'
import { percentile, summarise, type Row } from './stats.js'

/** Due times of the lateness scenario: uniformly over this window after publishing starts. */
const WINDOW_MS = { from: 10_000, to: 20_000 }
/** Messages per publishMany() call of the lateness scenario; each call draws its own due time. */
const PER_DUE_TIME = 10
/** The delay scheduler's own defaults are used (delay.batchSize 500, delay.maxIdleMs 5 s). */
const START_TIMEOUT_MS = 30_000

/**
 * Lateness of delayed messages through the daemon with the store: the daemon starts on a fresh
 * database (migrated by its own start), then `delayed` messages are published with deliverAt drawn
 * uniformly over 10–20 s ahead (PER_DUE_TIME messages per call, LISTEN/NOTIFY wakes the scheduler). A
 * handler records when it saw each one: lateness = seen − deliver-at header (set by the scheduler);
 * the release lateness uses the entry id's timestamp (the XADD) instead of the handler's clock.
 */
export async function latenessScenario(ctx: Context): Promise<Row[]> {
  const n = ctx.options.delayed
  const handler = { p50: [] as number[], p99: [] as number[], max: [] as number[] }
  const release = { p50: [] as number[], p99: [] as number[], max: [] as number[] }
  for (let run = 1; run <= ctx.options.runs; run++) {
    const stream = streamKey(ctx, 'delays', run, 'spread')
    const seenFile = path.join(ctx.tmp, `seen-${run}.txt`)
    const ids: string[] = []
    try {
      await withDatabase(async (db) => {
        const daemon = startDaemon({
          stream,
          tmp: ctx.tmp,
          label: `delays-${run}`,
          handler: RECORD_HANDLER,
          consumer: {},
          databaseUrl: db.url,
          env: { [SEEN_FILE_ENV]: seenFile },
          cpuProf: ctx.options.cpuProf,
        })
        try {
          // The consumer group exists once the store is open and migrated and the consumer started.
          while ((await groupState(ctx.redis, stream)) === null) {
            const dead = await daemon.check()
            if (dead) throw new Error(dead)
            if (performance.now() - daemon.started > START_TIMEOUT_MS) throw new Error('daemon did not start')
            await sleep(20)
          }
          const publisher = createPublisher({
            redisUrl: REDIS_URL,
            databaseUrl: db.url,
            logger: benchLogger(),
          })
          try {
            const base = Date.now()
            const messages = messagesFor(stream, n)
            for (let start = 0; start < n; start += PER_DUE_TIME) {
              const deliverAt = base + WINDOW_MS.from + Math.random() * (WINDOW_MS.to - WINDOW_MS.from)
              const results = await publisher.publishMany(messages.slice(start, start + PER_DUE_TIME), {
                deliverAt: Math.round(deliverAt),
              })
              for (const r of results) ids.push(r.id)
            }
            const took = Date.now() - base
            if (took >= WINDOW_MS.from)
              throw new Error(`publishing the delays took ${took} ms, past the first due time`)
          } finally {
            await publisher.close()
          }
          const lines = await waitForLines(seenFile, n, () => daemon.check(), WINDOW_MS.to + 60_000)
          const seen = parseSeen(lines, n)
          for (const [into, values] of [
            [handler, seen.map((s) => s.seen - s.deliverAt)],
            [release, seen.map((s) => s.entryMs - s.deliverAt)],
          ] as const) {
            const sorted = values.sort((a, b) => a - b)
            into.p50.push(percentile(sorted, 50))
            into.p99.push(percentile(sorted, 99))
            into.max.push(sorted.at(-1)!)
          }
        } finally {
          await daemon.stop()
        }
      })
      progress(
        `delays run ${run}/${ctx.options.runs}: lateness p50 ${handler.p50.at(-1)} ms, p99 ${handler.p99.at(-1)} ms, ` +
          `max ${handler.max.at(-1)} ms (release p99 ${release.p99.at(-1)} ms)`,
      )
    } finally {
      await deleteStream(ctx.redis, stream, ids)
    }
  }
  const rows: Row[] = []
  for (const [what, values] of [
    ['handler', handler],
    ['release (entry id)', release],
  ] as const) {
    for (const p of ['p50', 'p99', 'max'] as const) {
      rows.push({
        scenario: 'delays',
        metric: `lateness ${p}, ${what} − deliver-at`,
        unit: 'ms',
        summary: summarise(values[p]),
        ...(p === 'p99' && what === 'handler' ? { target: { op: '<=' as const, bound: 50 } } : {}),
      })
    }
  }
  return rows
}

interface Seen {
  id: string
  deliverAt: number
  entryMs: number
  seen: number
}

function parseSeen(lines: string[], n: number): Seen[] {
  const byId = new Map<string, Seen>()
  for (const line of lines) {
    const [id, deliverAt, entryMs, seen] = line.split(' ')
    const s = { id: id!, deliverAt: Number(deliverAt), entryMs: Number(entryMs), seen: Number(seen) }
    if (!Number.isFinite(s.deliverAt)) throw new Error(`message ${id} arrived without a deliver-at header`)
    // A duplicate delivery (there should be none) counts once, at its first sighting.
    if (!byId.has(s.id)) byId.set(s.id, s)
  }
  if (byId.size !== n) throw new Error(`the handler saw ${byId.size} distinct messages, expected ${n}`)
  return [...byId.values()]
}

async function waitForLines(
  file: string,
  n: number,
  check: () => Promise<string | null>,
  timeoutMs: number,
): Promise<string[]> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []
    if (lines.length >= n) return lines
    const dead = await check()
    if (dead) throw new Error(dead)
    if (performance.now() > deadline)
      throw new Error(`the handler saw ${lines.length} of ${n} delayed messages`)
    await sleep(200)
  }
}
