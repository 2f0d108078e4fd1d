import { performance } from 'node:perf_hooks'
import { bySlices } from './slices.js'
import type { Redis } from 'ioredis'
import { createLogger, type Logger } from '../../src/log.js'
import { createPublisher, encodeMessage, type PublishMessage, type Publisher } from '../../src/publish.js'
import type { Sequelize } from 'sequelize'
import type { Options } from './options.js'
import { REDIS_URL } from './redis.js'
import type { Row } from './stats.js'

/** What every scenario gets: a Redis connection for setup and polling, a run id for unique keys. */
export interface Context {
  redis: Redis
  runId: string
  tmp: string
  options: Options
  /** Lines for the report's notes (reduced sizes, caveats seen during the run). */
  notes: string[]
}

export type Scenario = (ctx: Context) => Promise<Row[]>

/** The publisher's own log lines go to stderr at warn, away from the table. */
export const benchLogger = (): Logger => createLogger('warn', process.stderr)

/** A unique stream key per run and side: `bench:<runId>:<scenario>:<run>:<side>`. */
export const streamKey = (ctx: Context, scenario: string, run: number, side: string) =>
  `bench:${ctx.runId}:${scenario}:${run}:${side}`

/** n small JSON messages for one stream; ids are left to the publisher (UUIDv7). */
export const messagesFor = (stream: string, n: number): PublishMessage[] =>
  Array.from({ length: n }, (_, k) => ({ stream, payload: { n: k, total: 42 } }))

/** The same messages, encoded once into XADD field lists (the plain-XADD baseline). */
export const encodeAll = (messages: PublishMessage[]): { ids: string[]; entries: string[][] } => {
  const encoded = messages.map((m) => encodeMessage(m))
  return { ids: encoded.map((e) => e.id), entries: encoded.map((e) => e.fields) }
}

/** A publisher as an application would create it: its own Redis connection, the backup when `store`. */
export const publisherFor = (store: Sequelize | null): Publisher =>
  createPublisher({ redisUrl: REDIS_URL, store, logger: benchLogger() })

/** publishMany() over the messages in batches, `callers` calls in flight at once; resolves with the ids. */
export async function publishAll(publisher: Publisher, messages: PublishMessage[], batch = 500, callers = 1) {
  const ids: string[] = []
  await bySlices(messages, batch, callers, async (slice) => {
    for (const r of await publisher.publishMany(slice)) ids.push(r.id)
  })
  return ids
}

/** Epoch ms with sub-ms precision: comparable across processes (the handlers' and workers' timestamps). */
export const epochNow = () => performance.timeOrigin + performance.now()

/**
 * Publishes messages through a publisher of their own (the backup when `store`), closed afterwards —
 * after `beforeClose`, if given. The close hands the publisher's rows over (marked sent), as a
 * publisher that is done does, so a daemon's republisher has nothing to look up.
 */
export async function publishWith(
  store: Sequelize | null,
  messages: PublishMessage[],
  beforeClose?: () => Promise<unknown>,
): Promise<string[]> {
  const publisher = publisherFor(store)
  try {
    const ids = await publishAll(publisher, messages)
    await beforeClose?.()
    return ids
  } finally {
    await publisher.close()
  }
}

/** Progress on stderr; stdout carries only the table. */
export const progress = (line: string) => process.stderr.write(`bench: ${line}\n`)
