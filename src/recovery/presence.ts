import type { RedisClient } from '../redis/connect.js'
import { messageIdsIn } from './recoverStream.js'

/**
 * How far from its row's created_at (PostgreSQL's clock) an entry's id (Redis's clock) may lie: the
 * XADD follows the commit by milliseconds, but the two clocks may disagree and a slow XADD may take
 * seconds.
 */
const BEFORE_MS = 2_000
const AFTER_MS = 10_000

export interface SentRow {
  message_id: string
  stream: string
  created_at: Date
}

/**
 * Which of these backup rows have their entry in their stream. Each row's entry can only sit near
 * the time the row was written (entry ids are timestamps), so only those windows are read, merged per
 * stream — a check that costs the entries around the rows, not the whole stream. A row whose entry
 * lies outside its window (a transaction held open for minutes before its commit) reads as absent
 * and is re-sent: a duplicate that deduplication absorbs, never a loss.
 */
export async function presentInStreams(redis: RedisClient, rows: SentRow[]): Promise<Set<string>> {
  const present = new Set<string>()
  const byStream = new Map<string, SentRow[]>()
  for (const row of rows) {
    const list = byStream.get(row.stream)
    if (list) list.push(row)
    else byStream.set(row.stream, [row])
  }
  for (const [stream, list] of byStream) {
    for (const window of windows(list)) {
      const seen = await messageIdsIn(
        redis,
        stream,
        { start: String(window.from), end: String(window.to) },
        window.ids,
      )
      for (const id of window.ids) if (seen.has(id)) present.add(id)
    }
  }
  return present
}

interface Window {
  from: number
  to: number
  ids: Set<string>
}

/** The rows' windows, overlapping ones merged, in time order. */
function windows(rows: SentRow[]): Window[] {
  const sorted = [...rows].sort((a, b) => a.created_at.getTime() - b.created_at.getTime())
  const out: Window[] = []
  for (const row of sorted) {
    const at = row.created_at.getTime()
    const last = out.at(-1)
    if (last && at - BEFORE_MS <= last.to) {
      last.to = Math.max(last.to, at + AFTER_MS)
      last.ids.add(row.message_id)
    } else {
      out.push({ from: Math.max(0, at - BEFORE_MS), to: at + AFTER_MS, ids: new Set([row.message_id]) })
    }
  }
  return out
}
