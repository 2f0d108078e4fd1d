// The BullMQ side of the benchmark, a child process as the daemon is: one Worker on a queue the parent
// filled (or fills while it runs). Its settings come as JSON in argv[2]:
//   { queue, prefix, connection, concurrency, n, warm, processor, noopFile }
// - processor "inline": a no-op async function in this process.
// - processor "sandboxed": the same no-op handler file as the daemon's, run by BullMQ in worker threads
//   (useWorkerThreads).
// - processor "latency": inline, records when each job started against the publish time in job.data.t
//   (epoch ms, sub-ms precision, as performance.timeOrigin + performance.now() gives it), except for
//   warm-up jobs (job.data.w true).
// Messages to the parent (IPC): { ready } once the worker runs, then { first, warmed, last, count,
// latencies? } when n jobs completed (epoch ms of the first, the warm-th and the last 'completed'
// event), { error } on a failed job. The parent sends "stop" to close the worker; the process then exits.
import { performance } from 'node:perf_hooks'
import { Worker } from 'bullmq'

const spec = JSON.parse(process.argv[2])
// Every worker thread of the sandboxed pool pipes its stdio into this process's: one listener each.
process.stdout.setMaxListeners(spec.concurrency + 10)
process.stderr.setMaxListeners(spec.concurrency + 10)
const now = () => performance.timeOrigin + performance.now()
const latencies = []

const processors = {
  inline: async () => {},
  sandboxed: spec.noopFile,
  latency: async (job) => {
    const started = now()
    if (!job.data.w) latencies.push(started - job.data.t)
  },
}

const worker = new Worker(spec.queue, processors[spec.processor], {
  connection: spec.connection,
  prefix: spec.prefix,
  concurrency: spec.concurrency,
  useWorkerThreads: spec.processor === 'sandboxed',
  autorun: false,
})

let count = 0
let first = 0
let warmed = 0
let last = 0
worker.on('completed', () => {
  last = now()
  count++
  if (count === 1) first = last
  if (count === spec.warm) warmed = last
  if (count === spec.n)
    process.send({ first, warmed, last, count, ...(spec.processor === 'latency' ? { latencies } : {}) })
})
worker.on('failed', (job, err) => process.send({ error: `job ${job?.id} failed: ${err.message}` }))
worker.on('error', (err) => process.send({ error: String(err?.stack ?? err) }))

process.on('message', (message) => {
  if (message === 'stop')
    void worker.close().then(
      () => process.exit(0),
      () => process.exit(1),
    )
})
process.on('disconnect', () => process.exit(1))

await worker.waitUntilReady()
void worker.run()
process.send({ ready: true })
