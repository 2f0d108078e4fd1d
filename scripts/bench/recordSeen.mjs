// Benchmark fixture: records when the handler saw each message, for the delay-lateness scenario. One
// line per message, appended to the file named by ACKSTATE_BENCH_SEEN_FILE (worker threads inherit
// the env): "<message id> <deliver-at ms> <entry id ms> <seen ms>". Small appends with O_APPEND are
// atomic on a local file system, so both worker threads can share the file.
import { appendFileSync } from 'node:fs'

const file = process.env.ACKSTATE_BENCH_SEEN_FILE

export default async function recordSeen(message) {
  const seen = Date.now()
  const deliverAt = Date.parse(message.headers?.['deliver-at'] ?? '')
  const entryMs = Number(message.entryId.split('-')[0])
  if (file) appendFileSync(file, `${message.id} ${deliverAt} ${entryMs} ${seen}\n`)
}
