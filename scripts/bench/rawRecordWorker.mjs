// Piscina worker of the raw latency path: hands each entry of a batch to the same recording handler
// as the daemon's (recordSeen.mjs), as the message object the daemon would build from its fields.
import recordSeen from './recordSeen.mjs'

export default async function runBatch(entries) {
  await Promise.all(
    entries.map(([entryId, fields]) => {
      const f = {}
      for (let i = 0; i < fields.length; i += 2) f[fields[i]] = fields[i + 1]
      return recordSeen({
        id: f.id ?? entryId,
        entryId,
        payload: f.payload,
        headers: JSON.parse(f.headers ?? '{}'),
      })
    }),
  )
  return entries.length
}
