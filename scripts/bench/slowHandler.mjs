// Benchmark fixture for the recovery scenario: a handler that takes ACKSTATE_BENCH_SLOW_MS (default
// 1000) per message and records, in the file named by ACKSTATE_BENCH_SEEN_FILE, when it started and
// finished each one in which daemon process: "<message id> start|done <pid> <epoch ms>". Worker
// threads share their daemon's pid.
import { appendFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'

const file = process.env.ACKSTATE_BENCH_SEEN_FILE
const slowMs = Number(process.env.ACKSTATE_BENCH_SLOW_MS ?? 1000)
const now = () => (performance.timeOrigin + performance.now()).toFixed(3)

export default async function slowHandler(message) {
  if (file) appendFileSync(file, `${message.id} start ${process.pid} ${now()}\n`)
  await sleep(slowMs)
  if (file) appendFileSync(file, `${message.id} done ${process.pid} ${now()}\n`)
}
