import { setTimeout as sleep } from 'node:timers/promises'
import { fromPromise } from 'xstate'
import { BROKER_UNAVAILABLE, type Entry, type ReadInput } from '../../machines/types.js'
import { BrokerError } from '../errors.js'
import type { Redis } from '../redis/connect.js'
import { decodeBinaryEntry, decodeReply, type BufferEntry, type StreamReply } from '../redis/entries.js'
import { classify } from '../redis/errors.js'
import { freshClaimArgs, readWithClaims, type FreshClaims } from '../redis/freshClaims.js'
import type { Resources } from '../resources.js'

/** XREADGROUP's reply with buffers: [[stream, entries]]. */
type BufferReply = [Buffer, BufferEntry[]][]

/**
 * XREADGROUP GROUP g c COUNT n BLOCK ms STREAMS s > on the consumer's own connection. When the actor
 * is stopped (shutdown), the connection is dropped so the blocked read ends at once and nothing more
 * is read; an entry Redis delivered in that instant stays in the PEL. A batch read is claimed for
 * deduplication and started in the pool before this step resolves (src/actors/batchAhead.ts).
 *
 * A read that outlasts its BLOCK by `redis.timeoutMs` is on a connection ioredis cannot see is dead
 * (a frozen master, a partition, a failover it missed): the connection is dropped, the read fails
 * as ACK_ERR_REDIS_UNAVAILABLE (the consumer waits in `disconnected`), and the next read opens a new
 * one, through Sentinel or the Cluster's slot map to wherever the stream lives now. Without this a
 * worker can sit blocked forever after a reconnect, consuming nothing and reporting nothing.
 */
export const readBatch = (res: Resources) =>
  fromPromise<Entry[], ReadInput>(async ({ input, signal }) => {
    if (input.count <= 0) {
      // The pool is closing and granted nothing; COUNT 0 would mean "no limit" to Redis.
      await sleep(input.blockMs, undefined, { signal }).catch(() => {})
      return []
    }
    const reader = res.reader(input.name, input.consumer)
    const onAbort = () => res.dropReader(input.name)
    signal.addEventListener('abort', onAbort, { once: true })
    // Wake in time for the next due retry instead of blocking past it.
    const block = Math.min(input.blockMs, res.schedule.msUntilDue(input.name))
    const limitMs = block + res.config.redis.timeoutMs
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        res.dropReader(input.name, reader)
        res
          .logFor(input.name)
          .warn(
            { limitMs },
            'blocked read got no reply in time; dropped its connection, the next read opens a new one',
          )
        reject(
          new BrokerError(
            BROKER_UNAVAILABLE,
            `XREADGROUP ${input.stream} ${input.group}: no reply within ${limitMs} ms (BLOCK ${block} + redis.timeoutMs); the connection was dropped and the next read opens a new one`,
          ),
        )
      }, limitMs)
    })
    try {
      const rules = res.consumer(input.name)
      const binary = rules.payloadFormat === 'binary'
      // Redis claims the batch right behind the read when the loop has caught up (src/redis/freshClaims.ts).
      const cursor =
        !binary && rules.dedupeTtlMs > 0 && res.readsAlone(input.name)
          ? res.batchesAhead.freshCursor(input.name)
          : null
      let fresh: FreshClaims | null = null
      // The batch's claim (if it did not come with the read) and pool run start now, before the
      // machine steps to processing (src/actors/batchAhead.ts).
      const startAhead = async (entries: Entry[]) => {
        res.batchesAhead.read(input.name, entries, input.count)
        if (entries.length === 0) return entries
        const { name, stream, group, consumer } = input
        await res.batchesAhead.start(res, { name, stream, group, consumer, entries }, fresh, signal)
        return entries
      }
      // BLOCK only when blockMs is given: a read without it returns at once, with what is there.
      const read = async (count: number, blockMs?: number): Promise<Entry[]> => {
        const block = blockMs === undefined ? [] : ['BLOCK', blockMs]
        const args = [
          'GROUP',
          input.group,
          input.consumer,
          'COUNT',
          count,
          ...block,
          'STREAMS',
          input.stream,
          '>',
        ]
        // A Cluster has the same XREADGROUP; TypeScript cannot pick an overload on the union's variadic form.
        const client = reader as Redis
        if (binary) {
          const reply = (await client.callBuffer('XREADGROUP', ...args)) as BufferReply | null
          return (reply?.[0]?.[1] ?? []).map((e) => decodeBinaryEntry(e))
        }
        if (cursor !== null) {
          // A second read's claim covers the first read's entries too (they are after the cursor).
          const read = await readWithClaims(client, args, freshClaimArgs(input, rules, cursor, input.count))
          fresh = read.claims
          if (read.error && res.batchesAhead.firstFailure(input.name))
            res
              .logFor(input.name)
              .warn(
                { err: read.error },
                'the claim behind the read failed; batches are claimed with a call of their own meanwhile',
              )
          return decodeReply(read.reply as StreamReply)
        }
        return decodeReply((await client.call('XREADGROUP', ...args)) as StreamReply)
      }
      const entries = await Promise.race([read(input.count, block), deadline])
      if (entries.length !== 1 || entries.length >= input.count) return await startAhead(entries)
      // Redis wakes a blocked reader at the first entry a pipeline of XADDs adds, and writes that reply
      // only once it has run the whole pipeline: the rest are in the stream by now. One read without
      // BLOCK takes them into this batch instead of leaving them for the next turn of the loop (a whole
      // cycle of latency for every entry but the first of a burst). Only a reply of one entry can be
      // such a wake-up: entries added together (a script, as publishMany sends them, or MULTI) wake
      // the reader once they are all in, and a read that did not block took what there was.
      const more = await Promise.race([read(input.count - entries.length), deadline])
      return await startAhead(more.length === 0 ? entries : entries.concat(more))
    } catch (err) {
      throw classify(err, `XREADGROUP ${input.stream} ${input.group}`)
    } finally {
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
    }
  })
