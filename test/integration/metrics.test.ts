import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { test, type TestContext } from 'node:test'
import type { Redis } from 'ioredis'
import { loadConfig } from '../../src/config.js'
import { createPools, probePools } from '../../src/daemon.js'
import { startHttp } from '../../src/http/server.js'
import { createLogger } from '../../src/log.js'
import { createMetrics } from '../../src/metrics/index.js'
import { REDIS_CACHE_MS } from '../../src/metrics/redisMetrics.js'
import { startRuntime } from '../../src/runtime.js'
import { FIXTURES, writeConfig } from '../support/daemon.js'
import { eventually, REDIS_URL, testRedis } from '../support/redis.js'

/**
 * The runtime wired as the daemon wires it (metrics inspector from the first snapshot, collectors
 * attached to the started runtime and its pools, /metrics on the HTTP server), on port 0.
 */
async function startWithMetrics(t: TestContext, consumers: Record<string, unknown>[]) {
  const file = writeConfig(t, {
    logLevel: 'silent',
    reclaim: { intervalMs: 100, heartbeatTtlMs: 1_000 },
    consumers,
  })
  const config = loadConfig({ file, env: { REDIS_URL, ACKSTATE_STORE_ENABLED: 'false' } })
  const log = createLogger('silent')
  const pools = createPools(config)
  await probePools(pools)
  const metrics = createMetrics(log)
  const runtime = startRuntime(config, log, pools, { inspectors: [metrics.inspector] })
  metrics.attach({ runtime, pools })
  t.after(async () => {
    runtime.shutdown()
    await runtime.done
    metrics.close()
  })
  const server = await startHttp(0, runtime, log, { metrics })
  t.after(() => server.close())
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`
  return { runtime, scrape: () => scrape(url) }
}

/** The samples of one scrape: `name{labels}` → value, for ackstate's own series. */
async function scrape(url: string): Promise<Map<string, number>> {
  const res = await fetch(url)
  assert.equal(res.status, 200)
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
  const samples = new Map<string, number>()
  for (const line of (await res.text()).split('\n')) {
    const m = /^(ackstate_\w+)(\{[^}]*\})? (\S+)$/.exec(line)
    if (m) samples.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]))
  }
  return samples
}

/** Each named series of one consumer, by metric name (missing series are left out). */
function project(samples: Map<string, number>, consumer: string, stream: string, names: string[]) {
  const labels = `{consumer="${consumer}",stream="${stream}",group="${consumer}"}`
  return Object.fromEntries(
    names.flatMap((n) => (samples.has(n + labels) ? [[n, samples.get(n + labels)!] as const] : [])),
  )
}

async function publish(redis: Redis, stream: string, count: number): Promise<void> {
  const headers = JSON.stringify({ 'published-at': new Date().toISOString() })
  for (let i = 0; i < count; i++)
    await redis.xadd(stream, '*', 'id', `${stream}-${i}`, 'payload', '{}', 'headers', headers)
}

const COUNTERS = [
  'ackstate_batches_total',
  'ackstate_messages_read_total',
  'ackstate_messages_handled_total',
  'ackstate_messages_failed_total',
  'ackstate_messages_retried_total',
  'ackstate_messages_dead_lettered_total',
  'ackstate_messages_acked_total',
  'ackstate_handler_duration_seconds_count',
  'ackstate_publish_to_ack_seconds_count',
]
const GAUGES = [
  'ackstate_stream_length',
  'ackstate_group_lag',
  'ackstate_group_pending',
  'ackstate_dlq_length',
  'ackstate_consumer_up',
]

test('/metrics counts handled and retried messages exactly and reads lag, pending and lengths from Redis', async (t) => {
  const { redis, key } = testRedis(t)
  const orders = key('orders')
  const payments = key('payments')
  await publish(redis, orders, 5)
  await publish(redis, payments, 3)
  const { runtime, scrape } = await startWithMetrics(t, [
    { name: 'orders', stream: orders, handler: path.join(FIXTURES, 'ok.mjs'), blockMs: 50 },
    {
      name: 'payments',
      stream: payments,
      handler: path.join(FIXTURES, 'throws.mjs'),
      blockMs: 50,
      // The first failure leaves each entry pending for ten minutes: the numbers below stay put.
      retryBaseMs: 600_000,
      retryMaxMs: 600_000,
    },
  ])

  await eventually(
    async () => {
      const s = await scrape()
      const o = project(s, 'orders', orders, ['ackstate_messages_acked_total'])
      const p = project(s, 'payments', payments, ['ackstate_messages_retried_total'])
      return o.ackstate_messages_acked_total === 5 && p.ackstate_messages_retried_total === 3
    },
    { what: '5 orders acked and 3 payments retried' },
  )
  await sleep(REDIS_CACHE_MS + 50) // gauges read after the last ack, not from a cached scrape
  const settled = await scrape()
  assert.deepEqual(
    {
      orders: project(settled, 'orders', orders, [...COUNTERS, ...GAUGES]),
      payments: project(settled, 'payments', payments, [...COUNTERS, ...GAUGES]),
      redisUp: settled.get('ackstate_collector_up{source="redis"}'),
    },
    {
      orders: {
        ackstate_batches_total: 1,
        ackstate_messages_read_total: 5,
        ackstate_messages_handled_total: 5,
        ackstate_messages_failed_total: 0,
        ackstate_messages_retried_total: 0,
        ackstate_messages_dead_lettered_total: 0,
        ackstate_messages_acked_total: 5,
        ackstate_handler_duration_seconds_count: 5,
        ackstate_publish_to_ack_seconds_count: 5,
        ackstate_stream_length: 5,
        ackstate_group_lag: 0,
        ackstate_group_pending: 0,
        ackstate_dlq_length: 0,
        ackstate_consumer_up: 1,
      },
      payments: {
        ackstate_batches_total: 1,
        ackstate_messages_read_total: 3,
        ackstate_messages_handled_total: 0,
        ackstate_messages_failed_total: 3,
        ackstate_messages_retried_total: 3,
        ackstate_messages_dead_lettered_total: 0,
        ackstate_messages_acked_total: 0,
        ackstate_handler_duration_seconds_count: 3,
        ackstate_publish_to_ack_seconds_count: 0,
        ackstate_stream_length: 3,
        ackstate_group_lag: 0,
        ackstate_group_pending: 3,
        ackstate_dlq_length: 0,
        ackstate_consumer_up: 1,
      },
      redisUp: 1,
    },
  )
  const age = settled.get(
    `ackstate_pending_oldest_age_seconds{consumer="payments",stream="${payments}",group="payments"}`,
  )!
  assert.ok(age > 0 && age < 60, `oldest pending age ${age} s`)
  // The handler lives outside the (temporary) config's directory: labelled by its absolute path.
  assert.equal(settled.get(`ackstate_pool_threads{module="${path.join(FIXTURES, 'ok.mjs')}"}`), 2)

  // Stopped consumers: new entries wait in the stream, and the gauges say so.
  runtime.shutdown()
  await runtime.done
  await publish(redis, orders, 2)
  await sleep(REDIS_CACHE_MS + 50)
  const stopped = await scrape()
  assert.deepEqual(project(stopped, 'orders', orders, GAUGES), {
    ackstate_stream_length: 7,
    ackstate_group_lag: 2,
    ackstate_group_pending: 0,
    ackstate_dlq_length: 0,
    ackstate_consumer_up: 0,
  })
})
