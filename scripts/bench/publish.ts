import { performance } from 'node:perf_hooks'
import { Redis } from 'ioredis'
import {
  encodeAll,
  messagesFor,
  progress,
  publishAll,
  publisherFor,
  streamKey,
  type Context,
} from './context.js'
import { openMigrated, waitForCount, withDatabase } from './database.js'
import { REDIS_URL, deleteStream, xaddAll } from './redis.js'
import { fmt, pairedRatios, summarise, type Row } from './stats.js'

/** Messages per publishMany() call and per XADD pipeline. */
export const PUBLISH_BATCH = 500

/**
 * Publish throughput: `publisher.publishMany()` with the backup (one INSERT, then one XADD pipeline per
 * batch of 500, each awaited before the next) against a plain pipelined XADD of the same entries, encoded
 * beforehand, 500 per round trip. Both sides run in each run, alternating which goes first, on a
 * fresh database per run. The publisher's background "sent" marks are timed separately: a publish
 * resolves before them.
 */
export async function publishScenario(ctx: Context): Promise<Row[]> {
  const n = ctx.options.messages
  const xadd: number[] = []
  const publisher: number[] = []
  const marked: number[] = []
  for (let run = 1; run <= ctx.options.runs; run++) {
    await withDatabase(async (db) => {
      const store = await openMigrated(db)
      const redis = new Redis(REDIS_URL)
      try {
        const sides = run % 2 === 1 ? (['xadd', 'publisher'] as const) : (['publisher', 'xadd'] as const)
        for (const side of sides) {
          const stream = streamKey(ctx, 'publish', run, side)
          const messages = messagesFor(stream, n)
          try {
            if (side === 'xadd') {
              const { entries } = encodeAll(messages)
              const t0 = performance.now()
              await xaddAll(redis, stream, entries, PUBLISH_BATCH)
              xadd.push((n * 1000) / (performance.now() - t0))
            } else {
              const pub = publisherFor(store)
              try {
                const t0 = performance.now()
                await publishAll(pub, messages, PUBLISH_BATCH)
                const t1 = performance.now()
                const t2 = await waitForCount(
                  store,
                  `SELECT count(*) AS n FROM redis_message_backup WHERE status = 'pending'`,
                  [],
                  (c) => c === 0,
                  { pollMs: 10, what: 'every backup row marked sent' },
                )
                publisher.push((n * 1000) / (t1 - t0))
                marked.push((n * 1000) / (t2 - t0))
              } finally {
                await pub.close()
              }
              const [rows] = (await store.query('SELECT count(*) AS n FROM redis_message_backup')) as [
                { n: string }[],
                unknown,
              ]
              if (Number(rows[0]?.n) !== n) throw new Error(`expected ${n} backup rows, found ${rows[0]?.n}`)
            }
            const length = await ctx.redis.xlen(stream)
            if (length !== n) throw new Error(`${stream} holds ${length} entries, expected ${n}`)
          } finally {
            await deleteStream(ctx.redis, stream)
          }
        }
      } finally {
        redis.disconnect()
        await store.close()
      }
    })
    progress(
      `publish run ${run}/${ctx.options.runs}: xadd ${fmt(xadd.at(-1)!)} msgs/s, ` +
        `publisher ${fmt(publisher.at(-1)!)} msgs/s (${fmt(marked.at(-1)!)} incl. sent marks)`,
    )
  }
  const batch = `batches of ${PUBLISH_BATCH}`
  return [
    {
      scenario: 'publish',
      metric: `plain pipelined XADD, ${batch}`,
      unit: 'msgs/s',
      summary: summarise(xadd),
    },
    {
      scenario: 'publish',
      metric: `publishMany() + backup, ${batch}`,
      unit: 'msgs/s',
      summary: summarise(publisher),
    },
    {
      scenario: 'publish',
      metric: 'publishMany() + backup, until rows marked sent',
      unit: 'msgs/s',
      summary: summarise(marked),
    },
    {
      scenario: 'publish',
      metric: 'ratio publishMany+backup / XADD',
      unit: '×',
      summary: summarise(pairedRatios(publisher, xadd)),
      target: { op: '>=', bound: 0.5 },
    },
  ]
}
