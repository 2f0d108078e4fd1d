import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import { epochNow, messagesFor, progress, publishWith, streamKey, type Context } from './context.js'
import { SEEN_FILE_ENV, SLOW_HANDLER, SLOW_MS_ENV, startDaemon, type Daemon } from './daemon.js'
import { GROUP, deleteStream, groupState, waitForGroup } from './redis.js'
import { fmt, rowsOf, type Row } from './stats.js'

/** How long the slow handler takes per message. */
export const HANDLER_MS = 1_000
/** Messages published per part: few enough that both daemons hold all of them at once. */
export const IN_FLIGHT = 20
const CONSUMER = { batchSize: 10, concurrency: 2 }
const WAIT_MS = 30_000

interface Mark {
  id: string
  what: 'start' | 'done'
  pid: number
  at: number
}

const readMarks = (file: string): Mark[] =>
  existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => {
          const [id, what, pid, at] = line.split(' ')
          return { id: id!, what: what as Mark['what'], pid: Number(pid), at: Number(at) }
        })
    : []

/** Polls `until` every 20 ms until it returns a value; throws after WAIT_MS. */
async function waitFor<T>(what: string, until: () => Promise<T | undefined>): Promise<T> {
  const deadline = performance.now() + WAIT_MS
  for (;;) {
    const found = await until()
    if (found !== undefined) return found
    if (performance.now() > deadline) throw new Error(`recovery: timed out waiting for ${what}`)
    await sleep(20)
  }
}

/** Polls the handler's marks until `until` returns a value. */
const waitForMarks = <T>(file: string, what: string, until: (marks: Mark[]) => T | undefined) =>
  waitFor(what, () => Promise.resolve(until(readMarks(file))))

/** Entry ids pending in the group for the consumers of process `pid` (names are host-pid-boot). */
async function pendingOf(redis: Redis, stream: string, pid: number): Promise<string[]> {
  const pending = (await redis.xpending(stream, GROUP, '-', '+', 10_000)) as [string, string][]
  return pending.filter(([, consumer]) => consumer.includes(`-${pid}-`)).map(([entryId]) => entryId)
}

function slowDaemon(ctx: Context, stream: string, label: string, file: string): Daemon {
  return startDaemon({
    stream,
    tmp: ctx.tmp,
    label,
    handler: SLOW_HANDLER,
    consumer: CONSUMER,
    env: { [SEEN_FILE_ENV]: file, [SLOW_MS_ENV]: String(HANDLER_MS) },
    cpuProf: ctx.options.cpuProf,
  })
}

/**
 * Recovery, with the store off (the Redis reclaim path) and a handler that takes HANDLER_MS:
 * - SIGKILL: two daemons on one group share IN_FLIGHT messages; once all are delivered and handlers
 *   run, the daemon holding more of them is killed. Measured: from the kill until the other daemon started (re-delivery) and finished every
 *   entry the dead one had pending — reclaim by heartbeats at the defaults (reclaim.heartbeatTtlMs
 *   3000, reclaim.intervalMs 500).
 * - SIGTERM: one daemon with handlers running gets SIGTERM; measured: until the process exited, and
 *   how many entries were still pending in the group after it (the drain should ack them all).
 */
export async function recoveryScenario(ctx: Context): Promise<Row[]> {
  const redelivered: number[] = []
  const handled: number[] = []
  const orphans: number[] = []
  const exit: number[] = []
  const leftPending: number[] = []
  for (let run = 1; run <= ctx.options.runs; run++) {
    const killed = await killPart(ctx, run)
    redelivered.push(killed.redeliveredMs)
    handled.push(killed.handledMs)
    orphans.push(killed.orphans)
    const termed = await termPart(ctx, run)
    exit.push(termed.exitMs)
    leftPending.push(termed.leftPending)
    progress(
      `recovery run ${run}/${ctx.options.runs}: SIGKILL → ${killed.orphans} in-flight re-delivered in ` +
        `${fmt(killed.redeliveredMs)} ms, handled in ${fmt(killed.handledMs)} ms; SIGTERM → exit in ` +
        `${fmt(termed.exitMs)} ms, ${termed.leftPending} left pending`,
    )
  }
  const row = rowsOf('recovery')
  return [
    row('SIGKILL: in-flight entries of the killed daemon', 'msgs', orphans),
    row('SIGKILL → all re-delivered by the other daemon (last handler start)', 'ms', redelivered, {
      op: '<=',
      bound: 5_000,
    }),
    row(`SIGKILL → all handled by the other daemon (last handler end, ${HANDLER_MS} ms each)`, 'ms', handled),
    row(`SIGTERM with ${HANDLER_MS / 1000} s handlers in flight → process exit`, 'ms', exit),
    row('SIGTERM: entries left pending after the exit', 'msgs', leftPending),
  ]
}

async function killPart(ctx: Context, run: number) {
  const stream = streamKey(ctx, 'recovery', run, 'kill')
  const file = path.join(ctx.tmp, `recovery-kill-${run}.txt`)
  const a = slowDaemon(ctx, stream, `recovery-a-${run}`, file)
  const b = slowDaemon(ctx, stream, `recovery-b-${run}`, file)
  try {
    await waitForGroup(ctx.redis, stream, { started: a.started, alive: a.check })
    await waitForGroup(ctx.redis, stream, { started: b.started, alive: b.check })
    await publishWith(null, messagesFor(stream, IN_FLIGHT))
    // Once every entry was delivered and handlers run, kill the daemon holding the most of them.
    await waitForMarks(file, 'a handler to start', (marks) => marks.find((m) => m.what === 'start'))
    await waitFor('every entry delivered', async () => {
      const state = await groupState(ctx.redis, stream)
      return state !== null && state.entriesRead >= IN_FLIGHT ? true : undefined
    })
    const held = async (d: Daemon) => (await pendingOf(ctx.redis, stream, d.pid!)).length
    const [victim, survivor] = (await held(a)) >= (await held(b)) ? [a, b] : [b, a]
    const victimPid = victim.pid!
    const killedAt = epochNow()
    victim.kill('SIGKILL')
    await victim.exited
    // A dead consumer's pending entries stay put until the other daemon reclaims them (heartbeat TTL).
    const entryIds = await pendingOf(ctx.redis, stream, victimPid)
    const entryToId = new Map(
      (await ctx.redis.xrange(stream, '-', '+')).map(([entryId, fields]) => [
        entryId,
        fields[fields.indexOf('id') + 1]!,
      ]),
    )
    const orphanIds = new Set(entryIds.map((e) => entryToId.get(e)!))
    if (orphanIds.size === 0) throw new Error('recovery: the killed daemon had nothing pending')
    const survivorMarks = (what: Mark['what']) => (marks: Mark[]) => {
      const mine = marks.filter((m) => m.what === what && m.pid === survivor.pid && orphanIds.has(m.id))
      return new Set(mine.map((m) => m.id)).size === orphanIds.size
        ? Math.max(...mine.map((m) => m.at))
        : undefined
    }
    const started = await waitForMarks(file, 'the re-deliveries', survivorMarks('start'))
    const done = await waitForMarks(file, 'the re-delivered handlers', survivorMarks('done'))
    return { orphans: orphanIds.size, redeliveredMs: started - killedAt, handledMs: done - killedAt }
  } finally {
    await Promise.all([a.stop(), b.stop()])
    await deleteStream(ctx.redis, stream)
  }
}

async function termPart(ctx: Context, run: number) {
  const stream = streamKey(ctx, 'recovery', run, 'term')
  const file = path.join(ctx.tmp, `recovery-term-${run}.txt`)
  const daemon = slowDaemon(ctx, stream, `recovery-term-${run}`, file)
  try {
    await waitForGroup(ctx.redis, stream, { started: daemon.started, alive: daemon.check })
    await publishWith(null, messagesFor(stream, IN_FLIGHT))
    await waitForMarks(file, 'a handler to start', (marks) => marks.find((m) => m.what === 'start'))
    const signalled = performance.now()
    daemon.kill('SIGTERM')
    const { code, at } = await daemon.exited
    if (code !== 0) throw new Error(`recovery: the daemon exited with code ${code} after SIGTERM`)
    const [count] = (await ctx.redis.xpending(stream, GROUP)) as [number]
    return { exitMs: at - signalled, leftPending: Number(count) }
  } finally {
    await daemon.stop()
    await deleteStream(ctx.redis, stream)
  }
}
