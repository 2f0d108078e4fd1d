import path from 'node:path'
import { createPublisher } from '../../src/publish.js'
import { benchLogger, messagesFor, progress, streamKey, type Context } from './context.js'
import { RECORD_HANDLER, SEEN_FILE_ENV, startDaemon } from './daemon.js'
import { withDatabase } from './database.js'
import { REDIS_URL, deleteStream, waitForGroup } from './redis.js'
import { describeSpread, parseSeen, pushSpread, spread, spreadRows, waitForLines } from './seen.js'
import type { Row } from './stats.js'

/** Due times of the lateness scenario: uniformly over this window after publishing starts. */
const WINDOW_MS = { from: 10_000, to: 20_000 }
/** Messages per publishMany() call of the lateness scenario; each call draws its own due time. */
const PER_DUE_TIME = 10

/**
 * Lateness of delayed messages through the daemon with the store: the daemon starts on a fresh
 * database (migrated by its own start), then `delayed` messages are published with deliverAt drawn
 * uniformly over 10–20 s ahead (PER_DUE_TIME messages per call, LISTEN/NOTIFY wakes the scheduler). A
 * handler records when it saw each one: lateness = seen − deliver-at header (set by the scheduler);
 * the release lateness uses the entry id's timestamp (the XADD) instead of the handler's clock.
 */
export async function latenessScenario(ctx: Context): Promise<Row[]> {
  const n = ctx.options.delayed
  const handler = spread()
  const release = spread()
  for (let run = 1; run <= ctx.options.runs; run++) {
    const stream = streamKey(ctx, 'delays', run, 'spread')
    const seenFile = path.join(ctx.tmp, `seen-${run}.txt`)
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
          await waitForGroup(ctx.redis, stream, { started: daemon.started, alive: daemon.check })
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
              await publisher.publishMany(messages.slice(start, start + PER_DUE_TIME), {
                deliverAt: Math.round(deliverAt),
              })
            }
            const took = Date.now() - base
            if (took >= WINDOW_MS.from)
              throw new Error(`publishing the delays took ${took} ms, past the first due time`)
          } finally {
            await publisher.close()
          }
          const lines = await waitForLines(seenFile, n, () => daemon.check(), WINDOW_MS.to + 60_000)
          const seen = parseSeen(lines, n)
          const undelayed = seen.find((s) => !Number.isFinite(s.deliverAt))
          if (undelayed) throw new Error(`message ${undelayed.id} arrived without a deliver-at header`)
          pushSpread(
            handler,
            seen.map((s) => s.seen - s.deliverAt),
          )
          pushSpread(
            release,
            seen.map((s) => s.entryMs - s.deliverAt),
          )
        } finally {
          await daemon.stop()
        }
      })
      progress(
        `delays run ${run}/${ctx.options.runs}: lateness ${describeSpread(handler)} ` +
          `(release p99 ${release.p99.at(-1)!.toFixed(1)} ms)`,
      )
    } finally {
      await deleteStream(ctx.redis, stream)
    }
  }
  return [
    ...spreadRows('delays', (p) => `lateness ${p}, handler − deliver-at`, handler, 50),
    ...spreadRows('delays', (p) => `lateness ${p}, release (entry id) − deliver-at`, release),
  ]
}
