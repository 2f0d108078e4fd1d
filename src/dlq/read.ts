import type { RedisClient } from '../redis/connect.js'
import { classify } from '../redis/errors.js'
import { deadLetterKey } from '../redis/keys.js'
import { decodeLetter, type DlqEntry } from './letter.js'

/** Which dead letters a `dlq` command works on. */
export interface DlqFilter {
  /** Streams whose `{stream}:dlq` to read (`--stream`, or every one found for `--all`). */
  streams: string[]
  /** A message id, or the entry id of the dead letter itself. */
  id?: string
  /** Dead-lettered at or after / at or before (ms since the epoch; the DLQ entry's id time). */
  sinceMs?: number
  untilMs?: number
  /** At most this many, across all streams; undefined: all. */
  limit?: number
}

/** A dead letter and the flat fields it was read from (replay re-publishes those). */
export interface ReadLetter {
  /** The stream whose dead-letter stream it is in (where replay puts it back). */
  stream: string
  /** The `{stream}:dlq` key it is in. */
  key: string
  letter: DlqEntry
  /** The entry's fields as text. */
  flat: string[]
  /** The same fields as the bytes stored (replay sends these back: a binary payload stays exact). */
  raw: Buffer[]
}

/** Entries read per XRANGE call. */
const PAGE = 500

/**
 * The dead letters matching `filter`, oldest first per stream, streams in the given order. The time
 * range narrows the XRANGE itself (entry ids are times); the id filter is checked per entry.
 */
export async function readDeadLetters(redis: RedisClient, filter: DlqFilter): Promise<ReadLetter[]> {
  const out: ReadLetter[] = []
  const limit = filter.limit ?? Infinity
  for (const stream of filter.streams) {
    const key = deadLetterKey(stream)
    let start = filter.sinceMs === undefined ? '-' : String(filter.sinceMs)
    const end = filter.untilMs === undefined ? '+' : String(filter.untilMs)
    while (out.length < limit) {
      let page: [Buffer, Buffer[]][]
      try {
        page = await redis.xrangeBuffer(key, start, end, 'COUNT', PAGE)
      } catch (err) {
        throw classify(err, `XRANGE ${key}`)
      }
      for (const [rawId, raw] of page) {
        const dlqEntryId = rawId.toString()
        const flat = raw.map((b) => b.toString('utf8'))
        const letter = decodeLetter(stream, dlqEntryId, flat)
        if (filter.id !== undefined && letter.id !== filter.id && dlqEntryId !== filter.id) continue
        out.push({ stream, key, letter, flat, raw })
        if (out.length >= limit) break
      }
      if (page.length < PAGE) break
      start = `(${page[page.length - 1]![0].toString()}`
    }
  }
  return out
}

/** `{orders}:dlq` → `orders`; undefined for any other key. */
export function streamOfDlqKey(key: string): string | undefined {
  const m = /^\{([^{}]+)\}:dlq$/.exec(key)
  return m?.[1]
}

/**
 * Every stream that has a dead-letter stream, sorted (SCAN, so it does not block Redis). On a Cluster
 * SCAN sees one node's keys, so every master is scanned.
 */
export async function findDlqStreams(redis: RedisClient): Promise<string[]> {
  const streams = new Set<string>()
  try {
    // A Cluster knows its masters once connected; the PING waits for that.
    if ('nodes' in redis) await redis.ping()
    const servers: RedisClient[] = 'nodes' in redis ? redis.nodes('master') : [redis]
    for (const server of servers) {
      let cursor = '0'
      do {
        const [next, keys] = await server.scan(cursor, 'MATCH', '{*}:dlq', 'COUNT', 1000, 'TYPE', 'stream')
        cursor = next
        for (const key of keys) {
          const stream = streamOfDlqKey(key)
          if (stream !== undefined) streams.add(stream)
        }
      } while (cursor !== '0')
    }
  } catch (err) {
    throw classify(err, 'SCAN for dead-letter streams')
  }
  return [...streams].sort()
}
