import type { ChainableCommander } from 'ioredis'
import type { RedisClient } from './connect.js'
import { keySlot } from './slots.js'

/** ioredis's reply to one pipelined command: its error, or its result. */
export type Reply = [Error | null, unknown]

/**
 * Runs every item's commands in as few round trips as the topology allows: one pipeline on a single
 * server; on a Cluster one pipeline per hash slot, in parallel, because a Cluster pipeline must stay
 * within one slot (ioredis refuses it otherwise, before sending anything). `keyOf` names the key
 * that decides an item's slot; the commands `add` queues for it must all hash there. Resolves with
 * each item's replies in item order. A pipeline that failed as a whole (the connection dropped)
 * gives each of its commands that error, so one slot's outage does not hide what the others did.
 */
export async function pipelineBySlot<T>(
  redis: RedisClient,
  items: readonly T[],
  keyOf: (item: T) => string,
  add: (pipeline: ChainableCommander, item: T) => void,
): Promise<Reply[][]> {
  const groups = new Map<number, number[]>()
  items.forEach((item, i) => {
    const slot = redis.isCluster ? keySlot(keyOf(item)) : 0
    const group = groups.get(slot)
    if (group) group.push(i)
    else groups.set(slot, [i])
  })
  const out: Reply[][] = new Array<Reply[]>(items.length)
  await Promise.all(
    [...groups.values()].map(async (indexes) => {
      const pipeline = redis.pipeline()
      const counts = indexes.map((i) => {
        const before = pipeline.length
        add(pipeline, items[i]!)
        return pipeline.length - before
      })
      const total = counts.reduce((a, b) => a + b, 0)
      let replies: Reply[]
      try {
        replies = (await pipeline.exec()) ?? []
        if (replies.length < total) throw new Error('no reply from Redis to the pipeline')
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err))
        replies = Array.from({ length: total }, (): Reply => [error, null])
      }
      let at = 0
      indexes.forEach((i, n) => {
        out[i] = replies.slice(at, at + counts[n]!)
        at += counts[n]!
      })
    }),
  )
  return out
}
