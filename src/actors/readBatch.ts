import { setTimeout as sleep } from 'node:timers/promises'
import { fromPromise } from 'xstate'
import { BROKER_UNAVAILABLE, type Entry, type ReadInput } from '../../machines/types.js'
import { BrokerError } from '../errors.js'
import { decodeBinaryEntry, decodeReply, type BufferEntry, type StreamReply } from '../redis/entries.js'
import { classify } from '../redis/errors.js'
import type { Resources } from '../resources.js'

/**
 * XREADGROUP GROUP g c COUNT n BLOCK ms STREAMS s > on the consumer's own connection. When the actor
 * is stopped (shutdown), the connection is dropped so the blocked read ends at once and nothing more
 * is read; an entry Redis delivered in that instant stays in the PEL.
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
      const args = ['GROUP', input.group, input.consumer, 'COUNT', input.count, 'BLOCK', block] as const
      if (res.consumer(input.name).payloadFormat === 'binary') {
        const read = reader.xreadgroupBuffer(...args, 'STREAMS', input.stream, '>') as Promise<
          [Buffer, BufferEntry[]][] | null
        >
        return ((await Promise.race([read, deadline]))?.[0]?.[1] ?? []).map((e) => decodeBinaryEntry(e))
      }
      const read = reader.xreadgroup(...args, 'STREAMS', input.stream, '>') as Promise<StreamReply>
      return decodeReply(await Promise.race([read, deadline]))
    } catch (err) {
      throw classify(err, `XREADGROUP ${input.stream} ${input.group}`)
    } finally {
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
    }
  })
