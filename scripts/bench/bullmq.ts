import { fork } from 'node:child_process'
import path from 'node:path'
import { Queue } from 'bullmq'
import type { Redis } from 'ioredis'
import { epochNow } from './context.js'
import { NOOP_HANDLER, ROOT } from './daemon.js'
import { REDIS_URL, RUN_TIMEOUT_MS, unlinkMatching } from './redis.js'

const WORKER_SCRIPT = path.join(ROOT, 'scripts/bench/bullmqWorker.mjs')
/** The Worker's concurrency in every BullMQ run (the setting). */
export const BULLMQ_CONCURRENCY = 50
/**
 * Jobs completed before the throughput is timed: the Worker starts its sandboxed threads (one per
 * concurrent job) on demand, after the first completion, where the daemon starts its pool before its
 * first read.
 */
export const BULLMQ_WARM = 1_000
/** The warm-up of a run of n jobs: BULLMQ_WARM, at most a tenth of them. */
const warmOf = (n: number) => Math.min(BULLMQ_WARM, Math.floor(n / 10))
/** Jobs per addBulk() call when pre-filling. */
export const ADD_BULK = 1_000
/** Every run's queue has this name under a prefix of its own. */
const QUEUE = 'q'

export type Processor = 'inline' | 'sandboxed' | 'latency'

/** The bench's Redis as BullMQ's connection options. */
export function bullConnection() {
  const url = new URL(REDIS_URL)
  const db = Number(url.pathname.slice(1) || 0)
  return { host: url.hostname, port: Number(url.port || 6379), ...(db ? { db } : {}) }
}

/** A queue under its own prefix (unique per run and side), for filling and obliterating. */
export const openQueue = (prefix: string) => new Queue(QUEUE, { connection: bullConnection(), prefix })

/** Adds `n` small jobs (the same data as the stream messages) in addBulk() calls of ADD_BULK. */
export async function fillQueue(queue: Queue, n: number): Promise<void> {
  for (let start = 0; start < n; start += ADD_BULK) {
    const jobs = Array.from({ length: Math.min(ADD_BULK, n - start) }, (_, k) => ({
      name: 'bench',
      data: { n: start + k, total: 42 },
    }))
    await queue.addBulk(jobs)
  }
}

/**
 * Obliterates the queue (force: even with jobs active), closes it, and deletes whatever keys are left
 * under its prefix, so no run leaves anything in Redis.
 */
export async function dropQueue(redis: Redis, queue: Queue, prefix: string): Promise<void> {
  try {
    await queue.obliterate({ force: true })
  } finally {
    await queue.close()
    await unlinkMatching(redis, `${prefix}:*`)
  }
}

export interface BullResult {
  /** Epoch ms of the first, the BULLMQ_WARM-th and the last completion. */
  first: number
  warmed: number
  last: number
  count: number
  /** Processor "latency": ms from job.data.t to the start of each job. */
  latencies?: number[]
}

export interface BullWorker {
  /** Epoch ms at fork. */
  spawned: number
  /** Resolves once the Worker is connected and running. */
  ready: Promise<void>
  /** Resolves when `n` jobs completed; rejects on a failed job, an early exit or the run timeout. */
  done: Promise<BullResult>
  /** Closes the Worker and waits for the process to exit (SIGKILL after 30 s). */
  stop: () => Promise<void>
}

/** A BullMQ Worker in a child process (scripts/bench/bullmqWorker.mjs) at BULLMQ_CONCURRENCY. */
export function startBullWorker(prefix: string, n: number, processor: Processor): BullWorker {
  const spec = {
    queue: QUEUE,
    prefix,
    connection: bullConnection(),
    concurrency: BULLMQ_CONCURRENCY,
    n,
    warm: warmOf(n),
    processor,
    noopFile: NOOP_HANDLER,
  }
  const spawned = epochNow()
  const child = fork(WORKER_SCRIPT, [JSON.stringify(spec)], { cwd: ROOT, stdio: ['ignore', 2, 2, 'ipc'] })
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  let markReady: () => void
  const ready = new Promise<void>((resolve) => (markReady = resolve))
  const done = new Promise<BullResult>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`BullMQ ${processor} did not complete ${n} jobs in ${RUN_TIMEOUT_MS} ms`)),
      RUN_TIMEOUT_MS,
    )
    child.on('message', (m: BullResult | { ready: true } | { error: string }) => {
      if ('ready' in m) return markReady()
      clearTimeout(timer)
      if ('error' in m) reject(new Error(`BullMQ ${processor}: ${m.error}`))
      else resolve(m)
    })
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`BullMQ worker (${processor}) exited early with code ${code}`))
    })
  })
  done.catch(() => {})
  return {
    spawned,
    ready: Promise.race([ready, done.then(() => undefined)]),
    done,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        if (child.connected) child.send('stop')
        else child.kill('SIGTERM')
      }
      const killer = setTimeout(() => child.kill('SIGKILL'), 30_000)
      await exited
      clearTimeout(killer)
    },
  }
}

export interface BullSample {
  /** jobs/s from the BULLMQ_WARM-th completion to the last. */
  steady: number
  /** jobs/s from forking the worker to the last completion. */
  wall: number
}

/** Throughput of a Worker draining a pre-filled queue of `n` jobs; the queue is dropped afterwards. */
export async function benchBullmq(
  redis: Redis,
  prefix: string,
  n: number,
  processor: Processor,
): Promise<BullSample> {
  const queue = openQueue(prefix)
  try {
    await fillQueue(queue, n)
    const worker = startBullWorker(prefix, n, processor)
    try {
      const { warmed, last } = await worker.done
      return {
        steady: last > warmed ? ((n - warmOf(n)) * 1000) / (last - warmed) : NaN,
        wall: (n * 1000) / (last - worker.spawned),
      }
    } finally {
      await worker.stop()
    }
  } finally {
    await dropQueue(redis, queue, prefix)
  }
}
