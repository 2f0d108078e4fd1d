import assert from 'node:assert/strict'
import path from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { Registry } from 'prom-client'
import { createActor } from 'xstate'
import { consumerMachine } from '../../machines/consumerMachine.js'
import type {
  ClaimInput,
  ConsumerRef,
  Entry,
  Outcome,
  ProcessInput,
  ReadInput,
  SettleInput,
} from '../../machines/types.js'
import { Buckets } from '../../src/metrics/buckets.js'
import { cached } from '../../src/metrics/cache.js'
import { BucketsHistogram } from '../../src/metrics/histogram.js'
import { metricsInspector } from '../../src/metrics/inspector.js'
import { registerPoolMetrics } from '../../src/metrics/poolMetrics.js'
import { parseMemoryInfo } from '../../src/metrics/redisMetrics.js'
import type { ConsumerTotals } from '../../src/metrics/totals.js'
import { entry, immediate, ok, retry, scripted, settle } from '../support/machine.js'
import { testPool } from '../support/pool.js'

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url))

/** A consumer actor on fakes, observed by the metrics inspector; the test hands out reads and results. */
function observedConsumer(totals: Map<string, ConsumerTotals>) {
  const read = scripted<ReadInput, Entry[]>()
  const processed = scripted<ProcessInput, Outcome[]>()
  const acked = scripted<SettleInput, void>()
  const machine = consumerMachine.provide({
    actors: {
      startConsumer: immediate<ConsumerRef, void>(undefined).logic,
      reserveCapacity: immediate<{ name: string; count: number }, number>(10).logic,
      claimDue: immediate<ClaimInput, Entry[]>([]).logic,
      readBatch: read.logic,
      processBatch: processed.logic,
      deadLetter: immediate<SettleInput, void>(undefined).logic,
      ackMessages: acked.logic,
      recordRetries: immediate<SettleInput, void>(undefined).logic,
      closeConsumer: immediate<ConsumerRef, void>(undefined).logic,
    },
    actions: { releaseCapacity: () => {} },
  })
  const input = {
    name: 'orders',
    stream: 'orders',
    group: 'billing',
    consumer: 'c1',
    batchSize: 10,
    blockMs: 100,
  }
  const actor = createActor(machine, {
    input: { ...input, maxAttempts: 3 },
    inspect: metricsInspector(totals),
  })
  actor.start()
  return { actor, read, processed, acked }
}

/** The totals of the one consumer these tests run (keyed by name, stream and group). */
const only = (totals: Map<string, ConsumerTotals>) => {
  assert.equal(totals.size, 1)
  return [...totals.values()][0]!
}

const counters = (t: ConsumerTotals | undefined) =>
  t && {
    labels: t.labels,
    batches: t.batches,
    read: t.read,
    handled: t.handled,
    failed: t.failed,
    retried: t.retried,
    deadLettered: t.deadLettered,
    acked: t.acked,
    brokerErrors: t.brokerErrors,
  }

/** Non-zero buckets as { le: count }. */
const filled = (b: Buckets) =>
  Object.fromEntries(
    [...b.counts].flatMap((n, i) => (n > 0 ? [[String(b.bounds[i] ?? '+Inf'), n] as const] : [])),
  )

test('the inspector counts each batch once, observes handler times and publish-to-ack at the XACK', async () => {
  const totals = new Map<string, ConsumerTotals>()
  const c = observedConsumer(totals)
  await settle()
  const now = Date.now()
  const fresh = entry('1-0', { headers: { 'published-at': new Date(now - 2_000).toISOString() } })
  // Released by the delay scheduler 400 ms after it was due.
  const failing = entry(`${now - 20_000}-0`, {
    headers: { 'deliver-at': new Date(now - 20_400).toISOString() },
  })
  const lastTry = entry(`${now - 20_000}-1`, { attempt: 3 })
  c.read.next([fresh, failing, lastTry])
  await settle()
  c.processed.next([
    { ...ok(fresh), durationMs: 5 },
    { ...retry(failing), durationMs: 12 },
    { ...retry(lastTry), durationMs: 7 }, // its last attempt: dead-lettered, then acked
  ])
  await settle()
  const before = {
    ...counters(only(totals))!,
    publishToAck: only(totals).publishToAckSeconds.count,
  }
  c.acked.next(undefined)
  await settle()
  const t = only(totals)
  assert.deepEqual(
    {
      before,
      after: counters(t),
      handler: {
        count: t.handlerSeconds.count,
        sum: t.handlerSeconds.sum,
        buckets: filled(t.handlerSeconds),
      },
      publishToAck: filled(t.publishToAckSeconds),
      delayLateness: filled(t.delayLatenessSeconds),
    },
    {
      before: {
        labels: { consumer: 'orders', stream: 'orders', group: 'billing' },
        batches: 1,
        read: 3,
        handled: 1,
        failed: 2,
        retried: 1,
        deadLettered: 1,
        acked: 0,
        brokerErrors: 0,
        publishToAck: 0,
      },
      after: {
        labels: { consumer: 'orders', stream: 'orders', group: 'billing' },
        batches: 1,
        read: 3,
        handled: 1,
        failed: 2,
        retried: 1,
        deadLettered: 1,
        acked: 2,
        brokerErrors: 0,
      },
      handler: { count: 3, sum: 0.024, buckets: { '0.005': 1, '0.01': 1, '0.025': 1 } },
      // The header's 2 s for the handled message; the entry id's 20 s for the dead-lettered one.
      publishToAck: { '2.5': 1, '30': 1 },
      delayLateness: { '0.5': 1 },
    },
  )
  c.actor.stop()
})

test('totals keep growing across a restarted consumer actor (a new actor starts its stats at zero)', async () => {
  const totals = new Map<string, ConsumerTotals>()
  for (let run = 0; run < 2; run++) {
    const c = observedConsumer(totals)
    await settle()
    c.read.next([entry(`${run}-1`), entry(`${run}-2`)])
    await settle()
    c.processed.next([ok(entry(`${run}-1`)), ok(entry(`${run}-2`))])
    await settle()
    c.acked.next(undefined)
    await settle()
    c.actor.stop()
  }
  assert.deepEqual(
    {
      handled: only(totals).handled,
      acked: only(totals).acked,
      batches: only(totals).batches,
    },
    { handled: 4, acked: 4, batches: 2 },
  )
})

test('a BucketsHistogram renders cumulative buckets, sum and count like a prom-client histogram', async () => {
  const registry = new Registry()
  const b = new Buckets([0.1, 1])
  for (const v of [0.05, 0.1, 0.5, 3]) b.observe(v)
  new BucketsHistogram(
    { name: 'x_seconds', help: 'h', labelNames: ['consumer'], buckets: [0.1, 1], registry },
    () => [[{ consumer: 'orders' }, b]],
  )
  assert.deepEqual((await registry.metrics()).trim().split('\n'), [
    '# HELP x_seconds h',
    '# TYPE x_seconds histogram',
    'x_seconds_bucket{consumer="orders",le="0.1"} 2',
    'x_seconds_bucket{consumer="orders",le="1"} 3',
    'x_seconds_bucket{consumer="orders",le="+Inf"} 4',
    'x_seconds_sum{consumer="orders"} 3.65',
    'x_seconds_count{consumer="orders"} 4',
  ])
})

test('pool gauges are labelled by module relative to the config file, one series per shared pool', async (t) => {
  const pool = testPool(t, path.join(FIXTURES, 'handlers/ok.mjs'), { capacity: 20 })
  await pool.gate.reserve('orders', 5)
  const registry = new Registry()
  registerPoolMetrics(
    registry,
    new Map([
      ['orders', pool],
      ['refunds', pool],
    ]),
    FIXTURES,
  )
  const lines = (await registry.metrics()).split('\n').filter((l) => l && !l.startsWith('#'))
  assert.deepEqual(
    lines.filter((l) => !l.startsWith('ackstate_pool_utilization')),
    [
      'ackstate_pool_threads{module="handlers/ok.mjs"} 1',
      'ackstate_pool_queue_size{module="handlers/ok.mjs"} 0',
      'ackstate_pool_reserved_messages{module="handlers/ok.mjs"} 5',
      'ackstate_pool_capacity_messages{module="handlers/ok.mjs"} 20',
      'ackstate_pool_tasks_completed_total{module="handlers/ok.mjs"} 0',
    ],
  )
})

test('the scrape cache shares one load between concurrent and back-to-back callers within its TTL', async () => {
  let now = 0
  let loads = 0
  const get = cached(
    async () => ++loads,
    1_000,
    () => now,
  )
  assert.deepEqual(await Promise.all([get(), get()]), [1, 1])
  now = 999
  assert.equal(await get(), 1)
  now = 1_000
  assert.equal(await get(), 2)
})

test('INFO memory is read for used_memory and maxmemory', () => {
  const info =
    '# Memory\r\nused_memory:1024\r\nused_memory_human:1K\r\nmaxmemory:4096\r\nmaxmemory_human:4K\r\n'
  assert.deepEqual(parseMemoryInfo(info), { used: 1024, max: 4096 })
})
