import { Counter, Gauge, type Registry } from 'prom-client'
import type { ActorRefFrom } from 'xstate'
import type { consumerMachine } from '../../machines/consumerMachine.js'
import { consumerId } from '../../machines/supervisorMachine.js'
import { stateName } from '../inspect.js'
import type { Runtime } from '../runtime.js'
import { HANDLER_BUCKETS, LATENCY_BUCKETS, LATENESS_BUCKETS } from './buckets.js'
import { BucketsHistogram } from './histogram.js'
import { CONSUMER_LABELS, type ConsumerTotals, type CounterKey } from './totals.js'

const COUNTER_HELP: Record<CounterKey, [string, string]> = {
  batches: ['ackstate_batches_total', 'Batches run through the handler pool.'],
  read: [
    'ackstate_messages_read_total',
    'Entries taken for processing: read with XREADGROUP, or claimed from the PEL (retries, orphans).',
  ],
  handled: [
    'ackstate_messages_handled_total',
    'Messages whose handler resolved (duplicates acked without running included).',
  ],
  failed: [
    'ackstate_messages_failed_total',
    'Deliveries that failed: the handler threw, timed out or crashed its worker, or the entry was gone.',
  ],
  retried: [
    'ackstate_messages_retried_total',
    'Failed deliveries left in the PEL to be retried after a backoff.',
  ],
  deadLettered: [
    'ackstate_messages_dead_lettered_total',
    'Messages written to {stream}:dlq (permanent error or attempts exhausted), then acked.',
  ],
  acked: ['ackstate_messages_acked_total', 'Entries acked (XACK): handled or dead-lettered.'],
  brokerErrors: [
    'ackstate_broker_errors_total',
    'Times a consumer lost Redis and waited for it to come back.',
  ],
}

/**
 * The metrics the runtime feeds: counters and histograms from the totals the inspector keeps (copied
 * into prom-client only when scraped), and the actor state and restarts of each consumer the runtime
 * runs now (`runtime.config()`, which a reload changes) read off the supervisor's snapshot.
 */
export function registerRuntimeMetrics(
  registry: Registry,
  totals: Map<string, ConsumerTotals>,
  runtime: Runtime,
): void {
  for (const [key, [name, help]] of Object.entries(COUNTER_HELP) as [CounterKey, [string, string]][]) {
    new Counter({
      name,
      help,
      labelNames: CONSUMER_LABELS,
      registers: [registry],
      collect() {
        this.reset()
        for (const t of totals.values()) this.inc(t.labels, t[key])
      },
    })
  }

  new BucketsHistogram(
    {
      name: 'ackstate_handler_duration_seconds',
      help: 'Handler run time per message, as measured in its worker thread.',
      labelNames: CONSUMER_LABELS,
      buckets: HANDLER_BUCKETS,
      registry,
    },
    () => [...totals.values()].map((t) => [t.labels, t.handlerSeconds] as const),
  )
  new BucketsHistogram(
    {
      name: 'ackstate_publish_to_ack_seconds',
      help: "From the message's published-at header (else its entry id's time) to its XACK.",
      labelNames: CONSUMER_LABELS,
      buckets: LATENCY_BUCKETS,
      registry,
    },
    () => [...totals.values()].map((t) => [t.labels, t.publishToAckSeconds] as const),
  )
  new BucketsHistogram(
    {
      name: 'ackstate_delay_lateness_seconds',
      help: "Delayed messages: from their deliver-at to the scheduler's XADD, measured when consumed.",
      labelNames: CONSUMER_LABELS,
      buckets: LATENESS_BUCKETS,
      registry,
    },
    () => [...totals.values()].map((t) => [t.labels, t.delayLatenessSeconds] as const),
  )

  new Gauge({
    name: 'ackstate_consumer_up',
    help: 'Whether the consumer actor is consuming (1) or starting, disconnected, draining or stopped (0).',
    labelNames: CONSUMER_LABELS,
    registers: [registry],
    collect() {
      this.reset()
      const snap = runtime.actor.getSnapshot()
      for (const c of runtime.config().consumers) {
        const child = snap.children[consumerId(c.name)] as ActorRefFrom<typeof consumerMachine> | undefined
        const state = child ? stateName(child.getSnapshot().value) : 'stopped'
        const up = /^(reading|processing|deadLettering|acking|retrying)/.test(state)
        this.set(labelsOf(c), snap.value === 'running' && up ? 1 : 0)
      }
    },
  })
  new Counter({
    name: 'ackstate_consumer_restarts_total',
    help: 'Restarts of the consumer actor after a crash (the daemon stops past supervisor.maxRestarts).',
    labelNames: CONSUMER_LABELS,
    registers: [registry],
    collect() {
      this.reset()
      const restarts = runtime.actor.getSnapshot().context.restarts
      for (const c of runtime.config().consumers) this.inc(labelsOf(c), restarts[consumerId(c.name)] ?? 0)
    },
  })
}

const labelsOf = (c: { name: string; stream: string; group: string }) => ({
  consumer: c.name,
  stream: c.stream,
  group: c.group,
})
