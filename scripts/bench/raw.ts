import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { Redis } from 'ioredis'
import { Piscina } from 'piscina'
import { BATCH_SIZE, BLOCK_MS, ROOT, THREADS } from './daemon.js'
import { GROUP, REDIS_URL, RUN_TIMEOUT_MS, drained, groupState } from './redis.js'

const RAW_WORKER = path.join(ROOT, 'scripts/bench/rawWorker.mjs')

export interface RawSample {
  steady: number
  wall: number
}

/**
 * The raw ceiling: the same work as the daemon with nothing but ioredis and Piscina, in this process —
 * a bare loop XREADGROUP (COUNT 500) → one Piscina task (2 threads) → XACK, strictly serial.
 */
export async function benchRaw(stream: string, n: number): Promise<RawSample> {
  const redis = new Redis(REDIS_URL)
  await redis.xgroup('CREATE', stream, GROUP, '0')
  const started = performance.now()
  const pool = new Piscina({ filename: RAW_WORKER, minThreads: THREADS, maxThreads: THREADS })
  try {
    let acked = 0
    let firstAck: { at: number; acked: number } | undefined
    while (acked < n) {
      if (performance.now() - started > RUN_TIMEOUT_MS)
        throw new Error(`raw loop did not drain in ${RUN_TIMEOUT_MS} ms`)
      const reply = (await redis.xreadgroup(
        'GROUP',
        GROUP,
        'raw',
        'COUNT',
        BATCH_SIZE,
        'BLOCK',
        BLOCK_MS,
        'STREAMS',
        stream,
        '>',
      )) as [string, [string, string[]][]][] | null
      const entries = reply?.[0]?.[1]
      if (!entries || entries.length === 0) continue
      const results = (await pool.run(entries)) as { entryId: string; ok: boolean }[]
      const ids = results.filter((r) => r.ok).map((r) => r.entryId)
      if (ids.length > 0) await redis.xack(stream, GROUP, ...ids)
      acked += ids.length
      firstAck ??= { at: performance.now(), acked }
    }
    const done = performance.now()
    if (!drained(await groupState(redis, stream), n))
      throw new Error('raw loop finished but the group is not drained')
    const steady =
      done > firstAck!.at
        ? ((n - firstAck!.acked) * 1000) / (done - firstAck!.at)
        : (n * 1000) / (done - started)
    return { steady, wall: (n * 1000) / (done - started) }
  } finally {
    await pool.destroy()
    redis.disconnect()
  }
}
