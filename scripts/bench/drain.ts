import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { messagesFor, progress, publisherFor, streamKey, type Context } from './context.js'
import { startDaemon } from './daemon.js'
import { openMigrated, waitForCount, withDatabase } from './database.js'
import { deleteStream, waitDrained } from './redis.js'
import { fmt, summarise, type Row } from './stats.js'

/** Delayed messages stored per publishMany() call. */
const PUBLISH_BATCH = 500
/** Each batch is due this long after it is published: in the future then, due once the daemon starts. */
const DUE_AFTER_MS = 1_000

/** How long the confirmations of the last acks may take to land before rows count as unconfirmed. */
const CONFIRM_GRACE_MS = 3_000
const ACKED_ROWS = `SELECT count(*) AS n FROM redis_message_backup WHERE status = 'acked'`

const entryMs = (entryId: string) => Number(entryId.split('-')[0])

/**
 * Drain of a backlog of delayed messages due at once: `messages` delayed publishes are stored while no
 * daemon runs, all due before it starts; then the daemon (store on, consumer on the same stream with a
 * no-op handler) releases them. Release rate: messages / (last XADD − first XADD), from the entry ids;
 * consumed: from the first release until the group has acked everything.
 */
export async function drainScenario(ctx: Context): Promise<Row[]> {
  const n = ctx.options.messages
  const release: number[] = []
  const consumed: number[] = []
  const startup: number[] = []
  const unconfirmed: number[] = []
  for (let run = 1; run <= ctx.options.runs; run++) {
    const stream = streamKey(ctx, 'drain', run, 'due')
    try {
      await withDatabase(async (db) => {
        const store = await openMigrated(db)
        try {
          const publisher = publisherFor(store)
          let lastDue = 0
          try {
            const messages = messagesFor(stream, n)
            for (let start = 0; start < n; start += PUBLISH_BATCH) {
              lastDue = Date.now() + DUE_AFTER_MS
              await publisher.publishMany(messages.slice(start, start + PUBLISH_BATCH), {
                deliverAt: lastDue,
              })
            }
          } finally {
            await publisher.close()
          }
          await sleep(Math.max(0, lastDue - Date.now() + 50))

          const spawnedAt = Date.now()
          const daemon = startDaemon({
            stream,
            tmp: ctx.tmp,
            label: `drain-${run}`,
            databaseUrl: db.url,
            cpuProf: ctx.options.cpuProf,
          })
          try {
            const drain = await waitDrained(ctx.redis, stream, n, {
              started: daemon.started,
              alive: daemon.check,
            })
            const doneAt = performance.timeOrigin + drain.done
            const [head] = await ctx.redis.xrange(stream, '-', '+', 'COUNT', 1)
            const [tail] = await ctx.redis.xrevrange(stream, '+', '-', 'COUNT', 1)
            if (!head || !tail) throw new Error(`${stream} is empty after the drain`)
            const first = entryMs(head[0])
            const last = entryMs(tail[0])
            release.push((n * 1000) / Math.max(1, last - first))
            consumed.push((n * 1000) / Math.max(1, doneAt - first))
            startup.push(first - spawnedAt)
            // The scheduler marks a batch delivered in the transaction that XADDed it, which commits
            // just after the XADD: a fast consumer may ack the last batch before that commit lands.
            await waitForCount(
              store,
              `SELECT count(*) AS n FROM delay_message WHERE status = 'pending'`,
              [],
              (c) => c === 0,
              { timeoutMs: 5_000, what: 'every delayed message marked delivered' },
            )
            // Every message was acked: its backup row should reach `acked` once the confirmer flushed.
            const confirmed = await waitForCount(store, ACKED_ROWS, [], (c) => c >= n, {
              timeoutMs: CONFIRM_GRACE_MS,
              what: 'every backup row acked',
            }).catch(() => undefined)
            const [acked] = (await store.query(ACKED_ROWS)) as [{ n: string }[], unknown]
            unconfirmed.push(confirmed === undefined ? n - Number(acked[0]?.n ?? 0) : 0)
          } finally {
            await daemon.stop()
          }
        } finally {
          await store.close()
        }
      })
      progress(
        `drain run ${run}/${ctx.options.runs}: released ${fmt(release.at(-1)!)} msgs/s, ` +
          `consumed ${fmt(consumed.at(-1)!)} msgs/s, first release ${fmt(startup.at(-1)!)} ms after spawn, ` +
          `${fmt(unconfirmed.at(-1)!)} backup rows never confirmed`,
      )
    } finally {
      await deleteStream(ctx.redis, stream)
    }
  }
  return [
    { scenario: 'drain', metric: 'release, first → last XADD', unit: 'msgs/s', summary: summarise(release) },
    {
      scenario: 'drain',
      metric: 'released and consumed, first XADD → last ack',
      unit: 'msgs/s',
      summary: summarise(consumed),
    },
    { scenario: 'drain', metric: 'daemon spawn → first release', unit: 'ms', summary: summarise(startup) },
    {
      scenario: 'drain',
      metric: `backup rows never confirmed (not acked ${CONFIRM_GRACE_MS / 1000} s after the last ack)`,
      unit: 'rows',
      summary: summarise(unconfirmed),
    },
  ]
}
