// The raw Redis → Piscina path of the latency scenario, in a process of its own like the daemon: a bare
// loop XREADGROUP (COUNT and BLOCK as the daemon's defaults) → one Piscina task per batch (2 threads)
// → XACK, nothing else. Usage: node rawLatency.mjs <redis url> <stream> <group> <count> <block ms>
// <threads>. Sends 'ready' over IPC once its group exists; runs until killed.
import { Redis } from 'ioredis'
import { Piscina } from 'piscina'

const [url, stream, group, count, block, threads] = process.argv.slice(2)
const pool = new Piscina({
  filename: new URL('./rawRecordWorker.mjs', import.meta.url).href,
  minThreads: Number(threads),
  maxThreads: Number(threads),
})
const reader = new Redis(url)
const acker = new Redis(url)
await reader.xgroup('CREATE', stream, group, '$', 'MKSTREAM')
process.send?.('ready')
for (;;) {
  const reply = await reader.xreadgroup(
    'GROUP',
    group,
    'raw',
    'COUNT',
    count,
    'BLOCK',
    block,
    'STREAMS',
    stream,
    '>',
  )
  const entries = reply?.[0]?.[1]
  if (!entries?.length) continue
  await pool.run(entries)
  await acker.xack(stream, group, ...entries.map(([entryId]) => entryId))
}
