// Benchmark fixture: records when the handler saw each message, for the delay-lateness and the
// publish → handler latency scenarios. One line per message, appended to the file named by
// ACKSTATE_BENCH_SEEN_FILE (worker threads inherit the env):
//   "<message id> <deliver-at ms> <entry id ms> <seen ms> <sent ms>"
// seen: epoch ms with sub-ms precision, taken first thing; sent: the payload's `t` (the publisher's
// clock when it published), NaN when absent. Small appends with O_APPEND are atomic on a local file
// system, so both worker threads can share the file.
import { appendFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'

const file = process.env.ACKSTATE_BENCH_SEEN_FILE

export default async function recordSeen(message) {
  const seen = performance.timeOrigin + performance.now()
  const deliverAt = Date.parse(message.headers?.['deliver-at'] ?? '')
  const entryMs = Number(message.entryId.split('-')[0])
  let sent = NaN
  try {
    sent = Number(JSON.parse(message.payload ?? 'null')?.t ?? NaN)
  } catch {
    // Not JSON: no publish time to compare with.
  }
  if (file) appendFileSync(file, `${message.id} ${deliverAt} ${entryMs} ${seen.toFixed(3)} ${sent}\n`)
}
