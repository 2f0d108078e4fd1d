/**
 * The benchmark suite: every scenario measured side by side in one run, each figure the median of
 * `--runs` runs with min and max, ratios between sides measured in the same run.
 *
 *   npm run bench -- [--only publish,consume,latency,delays,drain,recovery,memory,scale] [--runs N] [--messages N] [--delayed N]
 *                    [--json FILE] [--md FILE | --no-md] [--cpu-prof DIR] [--dedupe-off]
 *
 * - publish: publisher.publishMany() with the PostgreSQL backup vs a plain pipelined XADD.
 * - consume: the daemon (a child process, as deployed) with the store off and on (with `--dedupe-off`
 *   also with deduplication off), against a raw XREADGROUP → Piscina → (UPDATE … ANY →) XACK ceiling.
 * - latency: publish → handler start at 2,000 msgs/s, the daemon against the raw path and a BullMQ Worker
 *   (with `--dedupe-off` also the daemon with deduplication off).
 * - delays: lateness of delayed messages due over 10–20 s, seen by a handler of the daemon.
 * - drain: release rate of a backlog of delayed messages all due at once.
 * - recovery: a SIGKILLed daemon's in-flight messages re-delivered by another; SIGTERM → exit.
 * - memory: a daemon's RSS warm and after 500k messages (five times --messages), and its peak.
 * - scale: 1, 2 and 4 daemon processes on one group draining the same number of messages.
 *
 * Store scenarios use throwaway databases (ackstate_bench_<random>), dropped at the end, also on
 * failure; every stream key is unique to the run and deleted afterwards. A full run rewrites
 * BENCHMARKS.md. Modules: scripts/bench/*.ts.
 */
import { randomUUID } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { Redis } from 'ioredis'
import * as prettier from 'prettier'
import { ADD_BULK, BULLMQ_CONCURRENCY, BULLMQ_WARM } from './bench/bullmq.js'
import { consumeScenario, SANDBOXED_JOBS } from './bench/consume.js'
import { progress, type Context, type Scenario } from './bench/context.js'
import { BATCH_SIZE, BLOCK_MS, READERS, ROOT, THREADS, build } from './bench/daemon.js'
import { dropAll } from './bench/database.js'
import { latenessScenario } from './bench/delays.js'
import { drainScenario } from './bench/drain.js'
import { DURATION_MS, latencyScenario, RATE, WARMUP_MS } from './bench/latency.js'
import { DEFAULTS, parseOptions, type ScenarioName } from './bench/options.js'
import { CALLERS, PUBLISH_BATCH, publishScenario } from './bench/publish.js'
import { CHUNK, memoryMessages, memoryScenario, WARM_AT } from './bench/memory.js'
import { HANDLER_MS, IN_FLIGHT, recoveryScenario } from './bench/recovery.js'
import { REDIS_URL, POLL_MS } from './bench/redis.js'
import { COUNTS, scaleMessages, scaleScenario } from './bench/scale.js'
import { describeMachine, markdown, renderTable } from './bench/report.js'
import { meets, type Row } from './bench/stats.js'

const SCENARIOS: Record<ScenarioName, Scenario> = {
  publish: publishScenario,
  consume: consumeScenario,
  latency: latencyScenario,
  delays: latenessScenario,
  drain: drainScenario,
  recovery: recoveryScenario,
  memory: memoryScenario,
  scale: scaleScenario,
}

async function main(): Promise<void> {
  const options = parseOptions()
  const began = performance.now()
  const loadAtStart = os.loadavg()[0]!
  const date = new Date()
  build()
  if (options.cpuProf) mkdirSync(options.cpuProf, { recursive: true })

  const redis = new Redis(REDIS_URL)
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'ackstate-bench-'))
  const ctx: Context = { redis, runId: randomUUID(), tmp, options, notes: [] }
  // A signal or a crash outside main's own try/finally still drops the databases it created.
  const bail = (why: string, code: number) => {
    progress(`${why}: dropping the benchmark databases`)
    void dropAll().finally(() => process.exit(code))
  }
  process.once('SIGINT', () => bail('interrupted', 130))
  process.once('SIGTERM', () => bail('terminated', 143))
  process.once('uncaughtException', (err) => {
    process.stderr.write(`${err.stack ?? String(err)}\n`)
    bail('crashed', 1)
  })

  const rows: Row[] = []
  try {
    for (const name of options.only) {
      const t0 = performance.now()
      progress(`${name}: starting`)
      rows.push(...(await SCENARIOS[name](ctx)))
      progress(`${name}: done in ${Math.round((performance.now() - t0) / 1000)} s`)
    }
    const totalSeconds = (performance.now() - began) / 1000
    const machine = await describeMachine(redis, loadAtStart)
    const command = `npm run bench${options.argv.length > 0 ? ` -- ${options.argv.join(' ')}` : ''}`
    const settings = describeSettings(options.messages, options.delayed, options.runs)
    const notes = [...ctx.notes, ...standingNotes(options.messages, options.delayed)]
    if (options.cpuProf) notes.unshift('The daemons ran under --cpu-prof: their figures are skewed.')
    const busiest = Math.max(loadAtStart, machine.load.end)
    if (busiest > machine.nproc / 2)
      notes.push(
        `Other processes were busy (1-minute load average ${loadAtStart.toFixed(1)} at the start, ` +
          `${machine.load.end.toFixed(1)} at the end, on ${machine.nproc} cores): the figures are noisier than on an idle machine.`,
      )

    console.log(
      [
        `${options.only.join(', ')}: ${options.runs} run${options.runs === 1 ? '' : 's'} each, median (min, max); ` +
          `total ${Math.round(totalSeconds)} s`,
        renderTable(rows),
        ...notes.map((n) => `note: ${n}`),
      ].join('\n'),
    )
    const missed = rows.filter((r) => meets(r) === false)
    if (missed.length > 0)
      progress(`targets missed: ${missed.map((r) => `${r.scenario} ${r.metric}`).join('; ')}`)

    const report = {
      date: date.toISOString(),
      command,
      totalSeconds,
      machine,
      options,
      settings,
      notes,
      rows,
    }
    if (options.json) writeFileSync(options.json, `${JSON.stringify(report, null, 2)}\n`)
    if (options.md) {
      const file = path.resolve(ROOT, options.md)
      const text = markdown({
        rows,
        machine,
        command,
        date,
        totalSeconds,
        settings,
        definitions: DEFINITIONS,
        notes,
      })
      // Formatted as `npm run format` would, so formatting the repository never rewrites the report.
      const config = await prettier.resolveConfig(file)
      writeFileSync(file, await prettier.format(text, { ...config, filepath: file }))
      progress(`wrote ${path.relative(ROOT, file)}`)
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true })
    await dropAll()
    await redis.quit()
  }
}

function describeSettings(messages: number, delayed: number, runs: number): string[] {
  return [
    `${runs} run${runs === 1 ? '' : 's'} per figure; within a run the sides alternate (publish) or rotate (consume) so drift hits all.`,
    `publish: ${messages.toLocaleString('en-US')} small JSON messages, publishMany() in batches of ${PUBLISH_BATCH} ` +
      `awaited one after the other (one COPY + one XADD script call each), and with ${CALLERS} callers in ` +
      `flight; baseline: the same entries, encoded beforehand, XADDed ${PUBLISH_BATCH} per pipeline. With ` +
      `one caller the backup's COPY is also timed alone, and COPY then plain XADD in series over XADD shows ` +
      `the room a publish that commits before it sends has (not a strict bound: its XADD script is cheaper).`,
    `consume: ${messages.toLocaleString('en-US')} entries pre-filled through the publisher (with the backup ` +
      `when the store is on); daemon consumer batchSize ${BATCH_SIZE}, concurrency ${THREADS}, blockMs ` +
      `${BLOCK_MS}, readers ${READERS} (its documented throughput setting: the next batch is read while one ` +
      'runs), no-op handler; raw ceiling: the same batch size and threads, serial loop in-process, ' +
      'with the store: the same pre-filled backup rows confirmed by one `UPDATE … WHERE message_id = ANY($1)` ' +
      '(pg, synchronous_commit off as the daemon sets it) per batch before its XACK. BullMQ ' +
      `(devDependency, same Redis, a queue prefix of its own per run, obliterated afterwards): ${messages.toLocaleString('en-US')} ` +
      `jobs of the same data added with addBulk (${ADD_BULK} per call), then a Worker at concurrency ${BULLMQ_CONCURRENCY} ` +
      'in a child process with an inline no-op processor, or the no-op handler file as a sandboxed processor ' +
      `(useWorkerThreads) on ${SANDBOXED_JOBS(messages).toLocaleString('en-US')} jobs only, to stay within the time budget ` +
      '(a rate either way).',
    `latency: ${RATE.toLocaleString('en-US')} msgs/s for ${DURATION_MS / 1000} s after a ${WARMUP_MS / 1000} s warm-up ` +
      'left out of the figures, 20 messages per publishMany() (BullMQ: addBulk) every 10 ms against a fixed ' +
      'schedule, each carrying its publish time (epoch ms, performance.timeOrigin + performance.now()); the ' +
      "daemon runs with the store off (Redis → Piscina) and its consumer's defaults (batchSize 100, " +
      'concurrency 2, blockMs 5000), its handler appends when it started to a file; raw: a bare ' +
      'XREADGROUP (COUNT 100, BLOCK 5000) → one Piscina task (2 threads) → XACK loop in a child process ' +
      '(scripts/bench/rawLatency.mjs) with the same handler; BullMQ: a Worker at concurrency 50 in a child ' +
      'process, inline processor recording the same.',
    `delays: ${delayed.toLocaleString('en-US')} messages published with deliverAt uniform over 10–20 s ahead, ` +
      `10 per publishMany() call; the daemon's consumer keeps its defaults (batchSize 100, concurrency 2) ` +
      'and the scheduler its own (delay.batchSize 500).',
    `drain: ${messages.toLocaleString('en-US')} delayed messages stored while no daemon runs, all due when ` +
      'it starts (the freshly filled delay table not yet analyzed by autovacuum, as after a burst); consumer ' +
      'as in consume (dedupe on), delay.batchSize 500.',
    `recovery: store off, a handler taking ${HANDLER_MS} ms per message, consumer batchSize 10, concurrency 2, ` +
      `reclaim settings at their defaults (heartbeatTtlMs 3000, intervalMs 500); ${IN_FLIGHT} messages published ` +
      'to two daemons on one group; once all were delivered and a handler runs, the daemon holding more of them ' +
      'is SIGKILLed, its pending entries (XPENDING ' +
      'right after the kill) timed until the other started and finished them; then one daemon, the same ' +
      `${IN_FLIGHT} messages, SIGTERM once a handler started, timed until the process exited.`,
    `memory: ${memoryMessages(messages).toLocaleString('en-US')} messages (five times --messages: the issue's 1M ` +
      'halved to fit the 10-minute budget on 2 cores) through one daemon (store on, ' +
      `dedupeTtlMs 0 so Redis does not hold a dedupe mark per message; batchSize ${BATCH_SIZE}, concurrency ` +
      `${THREADS}, blockMs ${BLOCK_MS}, no-op handler), started on an empty stream and database; the bench feeds ` +
      `${CHUNK.toLocaleString('en-US')} messages at a time (their backup rows as \`sent\`, one INSERT … SELECT ` +
      'generate_series, then their entries, pipelined XADD) whenever fewer than that are unacked. RSS: VmRSS ' +
      `of /proc/<pid>/status, warm after ${WARM_AT(memoryMessages(messages)).toLocaleString('en-US')} acked, ` +
      'end when all were acked; peak: VmHWM.',
    `scale: ${COUNTS.join(', ')} daemon processes (store off, consumer as in consume) started on an empty ` +
      `stream; once all of them are up (heartbeat keys set, then 200 ms), ${scaleMessages(messages).toLocaleString('en-US')} ` +
      'pre-encoded entries (half of --messages, to fit the time budget: a rate either way) are ' +
      'XADDed (pipelined, 500 per round trip) and the group drained; the order of the counts rotates per run. ' +
      `The machine has ${os.availableParallelism()} cores: more processes than that share them.`,
    'Store scenarios: a fresh database per run (CREATE DATABASE ackstate_bench_<random>), migrated by ' +
      "openStore (or by the daemon's own start for delays), dropped WITH (FORCE) afterwards.",
  ]
}

const DEFINITIONS = [
  `steady: msgs/s from the first ack to the last, the daemon's progress read by polling XINFO GROUPS every ${POLL_MS} ms.`,
  `BullMQ steady: jobs/s from the ${BULLMQ_WARM.toLocaleString('en-US')}th \`completed\` event of the Worker to the last ` +
    '(counted in its process): its sandboxed threads start on demand, one per concurrent job, after the first ' +
    'jobs ran, where the daemon starts its pool before its first read.',
  'wall: msgs/s from spawning the daemon (raw: creating the pool) to the last ack; includes start-up.',
  'confirmed in PostgreSQL: msgs/s from the first ack until every backup row is `acked` (confirmations ' +
    'are written in the background, off the ack path; equal to steady when they keep up). Its ratio row ' +
    'divides it by the raw+UPDATE steady rate (whose confirmations are synchronous).',
  'until rows marked sent: msgs/s from the first publishMany() until no backup row is `pending` (the ' +
    "publisher's background sent marks).",
  "lateness: handler's clock at its start (or the entry id's ms timestamp) minus the `deliver-at` header the " +
    'scheduler sets; p50/p99/max over the messages of a run, then median (min, max) over runs.',
  "publish → handler start: the handler's (processor's) clock when it began minus the publish time in the " +
    'payload; p50/p99/max over the messages of a run, then median (min, max) over runs.',
  'release: delayed messages per second from the first XADD of the backlog to the last (entry id timestamps).',
  'start-up: ms from spawning the daemon to its first ack. The consumer group does not exist yet, so the ' +
    'daemon creates it, and with the store on that also runs the start-up recovery diff (every backup row ' +
    'of the stream against every entry) before the first read.',
  'backup rows never confirmed: rows of released delayed messages still not `acked` 3 s after every message ' +
    'was acked in Redis (should be 0).',
]

function standingNotes(messages: number, delayed: number): string[] {
  const notes: string[] = []
  if (messages < DEFAULTS.messages)
    notes.push(
      `--messages ${messages}: smaller than the default ${DEFAULTS.messages.toLocaleString('en-US')}.`,
    )
  if (delayed < DEFAULTS.delayed) notes.push(`--delayed ${delayed}: smaller than the default.`)
  return notes
}

await main()
