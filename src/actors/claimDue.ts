import { fromTask } from './fromTask.js'
import type { ClaimInput, Entry } from '../../machines/types.js'
import type { Redis } from '../redis/connect.js'
import { decodeBinaryEntry, decodeEntry } from '../redis/entries.js'
import { classify } from '../redis/errors.js'
import type { Resources } from '../resources.js'
import { backoffMs, minimumBackoffMs } from '../retry/backoff.js'
import { loadAttempts } from '../store/backup.js'

/** XPENDING extended form: [entryId, consumer, idleMs, deliveries]. */
type PendingRow = [string, string, number, number]

/**
 * Claims this consumer's pending entries whose backoff has passed (failed messages, and orphans the
 * reclaimer handed over with a large idle time). The attempt is the PEL delivery count, so it
 * survives crashes and restarts. XCLAIM silently drops entries deleted while pending (XDEL, trim);
 * they come back marked `gone` so the consumer can dead-letter them with a reason instead of losing
 * track of them.
 */
export const claimDue = (res: Resources) =>
  fromTask<Entry[], ClaimInput>(async ({ input }) => {
    // A failover may have lost the stream's last entries: they are re-sent from the backup first.
    await res.failovers.check(input.name, input.stream)
    if (!res.schedule.isDue(input.name)) return []
    const policy = res.consumer(input.name)
    const now = Date.now()
    let rows: PendingRow[]
    try {
      rows = (await res.redis.xpending(
        input.stream,
        input.group,
        'IDLE',
        minimumBackoffMs(policy),
        '-',
        '+',
        input.count,
        input.consumer,
      )) as PendingRow[]
    } catch (err) {
      throw classify(err, `XPENDING ${input.stream} ${input.group}`)
    }
    const due: PendingRow[] = []
    let earliest: number | undefined
    for (const row of rows) {
      const wait = backoffMs(row[3], policy, row[0]) - row[2]
      if (wait <= 0) due.push(row)
      else earliest = Math.min(earliest ?? Infinity, now + wait)
    }
    // A full page may hide more due entries: look again on the next loop.
    res.schedule.scanned(input.name, rows.length === input.count ? now : earliest)
    if (due.length === 0) return []

    const binary = policy.payloadFormat === 'binary'
    let claimed: [string | Buffer, (string | Buffer)[] | null][]
    try {
      // A Cluster has the same XCLAIM; TypeScript cannot pick an overload on the union's variadic form.
      const args = [input.stream, input.group, input.consumer, 0, ...due.map((r) => r[0])] as const
      claimed = binary
        ? ((await (res.redis as Redis).callBuffer('XCLAIM', ...args)) as [Buffer, Buffer[] | null][])
        : ((await (res.redis as Redis).xclaim(...args)) as [string, string[] | null][])
    } catch (err) {
      throw classify(err, `XCLAIM ${input.stream} ${input.group}`)
    }
    const found = new Map(claimed.map((e) => [e[0].toString(), e]))
    const entries = due.map(([entryId, , , deliveries]): Entry => {
      const raw = found.get(entryId)
      const attempt = deliveries + 1
      if (!raw?.[1]) return { ...decodeEntry(entryId, null, attempt), gone: true }
      return binary
        ? decodeBinaryEntry(raw as [Buffer, Buffer[]], attempt)
        : decodeEntry(entryId, raw[1] as string[], attempt)
    })
    return res.store ? withDurableAttempts(res, entries) : entries
  })

/**
 * The PEL's delivery count is lost when Redis fails over or restarts; the backup row's count is not.
 * The larger of the two wins, so maxAttempts holds across such a loss.
 */
async function withDurableAttempts(res: Resources, entries: Entry[]): Promise<Entry[]> {
  let stored: Map<string, number>
  try {
    stored = await loadAttempts(
      res.store!,
      entries.map((e) => e.id),
    )
  } catch (err) {
    res.log.warn({ err }, 'could not read attempt counts from the backup; using the PEL counts')
    return entries
  }
  return entries.map((e) => {
    const failures = stored.get(e.id)
    return failures !== undefined && failures + 1 > e.attempt ? { ...e, attempt: failures + 1 } : e
  })
}
