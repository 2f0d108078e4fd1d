// Piscina worker of the benchmark's raw ceiling: the least a pool task can do for a batch. It calls
// the same no-op handler as the daemon once per message and returns one result per message, so the
// main thread acks exactly what ran. Entries arrive as ioredis returns them: [entryId, fields].
import handle from './noop.mjs'

export default async function runBatch(entries) {
  return Promise.all(
    entries.map(async ([entryId, fields]) => {
      await handle({ entryId, fields })
      return { entryId, ok: true }
    }),
  )
}
