import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { encodeAll, messagesFor, progress, streamKey, type Context } from './context.js'
import { startDaemon, type Daemon } from './daemon.js'
import { deleteStream, steadyRate, waitDrained, waitForGroup, xaddAll } from './redis.js'
import { fmt, pairedRatios, rowsOf, type Row } from './stats.js'

/** Messages per side: half of --messages (50k by default), to fit the suite's time budget (a rate). */
export const scaleMessages = (messages: number) => Math.ceil(messages / 2)
/** Daemon processes per side, all on one consumer group. */
export const COUNTS = [1, 2, 4] as const
const REGISTER_TIMEOUT_MS = 60_000
/** After the last heartbeat appeared: time for its consumer's first blocking read. */
const SETTLE_MS = 200

/**
 * Scale: 1, 2 and 4 daemon processes (store off, the consume scenario's settings) on one group. They
 * start on an empty stream and, once every one of them is up (its heartbeat key set), the bench XADDs scaleMessages pre-encoded entries (pipelined); msgs/s from the first ack to the last. The
 * order of the counts rotates per run.
 */
export async function scaleScenario(ctx: Context): Promise<Row[]> {
  const n = scaleMessages(ctx.options.messages)
  const rates = new Map<number, number[]>(COUNTS.map((c) => [c, []]))
  for (let run = 1; run <= ctx.options.runs; run++) {
    for (let k = 0; k < COUNTS.length; k++) {
      const count = COUNTS[(k + run - 1) % COUNTS.length]!
      const stream = streamKey(ctx, 'scale', run, `x${count}`)
      const messages = messagesFor(stream, n)
      const { entries } = encodeAll(messages)
      const daemons: Daemon[] = []
      try {
        for (let d = 0; d < count; d++)
          daemons.push(
            startDaemon({
              stream,
              tmp: ctx.tmp,
              label: `scale-${run}-${count}-${d}`,
              cpuProf: ctx.options.cpuProf,
            }),
          )
        const first = daemons[0]!
        const alive = async () => (await Promise.all(daemons.map((d) => d.check()))).find((d) => d) ?? null
        await waitForGroup(ctx.redis, stream, { started: first.started, alive })
        await waitForDaemons(ctx, daemons, alive)
        const fillAt = performance.now()
        await xaddAll(ctx.redis, stream, entries)
        const drain = await waitDrained(ctx.redis, stream, n, { started: fillAt, alive })
        rates.get(count)!.push(steadyRate(n, drain, fillAt))
      } finally {
        await Promise.all(daemons.map((d) => d.stop()))
        await deleteStream(ctx.redis, stream)
      }
      progress(
        `scale run ${run}/${ctx.options.runs}, ${count} daemon(s): ${fmt(rates.get(count)!.at(-1)!)} msgs/s`,
      )
    }
  }
  const of = (count: number) => rates.get(count)!
  const row = rowsOf('scale')
  return [
    ...COUNTS.map((c) =>
      row(`${c} daemon process${c === 1 ? '' : 'es'} on one group: steady`, 'msgs/s', of(c)),
    ),
    ...COUNTS.slice(1).map((c) => row(`ratio ${c} processes / 1, steady`, '×', pairedRatios(of(c), of(1)))),
  ]
}

/**
 * Waits until every daemon renews its heartbeat (`ackstate:heartbeat:{host-pid-boot}`): its resources
 * (pools, connections) are open and its consumer and reclaimer run. Blocking reads on an empty stream
 * do not register a consumer in XINFO CONSUMERS on Redis 7.0, so that cannot tell.
 */
async function waitForDaemons(
  ctx: Context,
  daemons: Daemon[],
  alive: () => Promise<string | null>,
): Promise<void> {
  const deadline = performance.now() + REGISTER_TIMEOUT_MS
  for (;;) {
    const keys: string[] = []
    let cursor = '0'
    do {
      const [next, found] = await ctx.redis.scan(cursor, 'MATCH', 'ackstate:heartbeat:*', 'COUNT', 1_000)
      keys.push(...found)
      cursor = next
    } while (cursor !== '0')
    const up = daemons.filter((d) => keys.some((k) => k.includes(`-${d.pid}-`))).length
    if (up === daemons.length) return await sleep(SETTLE_MS)
    const dead = await alive()
    if (dead) throw new Error(dead)
    if (performance.now() > deadline)
      throw new Error(`scale: ${up} of ${daemons.length} daemons up after ${REGISTER_TIMEOUT_MS} ms`)
    await sleep(20)
  }
}
