import path from 'node:path'
import type { TestContext } from 'node:test'
import { createActor, toPromise } from 'xstate'
import { readBatch } from '../../src/actors/readBatch.js'
import { loadConfig } from '../../src/config.js'
import { createPools } from '../../src/pool/pools.js'
import { dedupeRules } from '../../src/redis/dedupe.js'
import { Resources } from '../../src/resources.js'
import { FIXTURES, writeConfig } from './daemon.js'
import { testLogger } from './postgres.js'
import { REDIS_URL, testRedis } from './redis.js'

/**
 * A `json` consumer "orders" (handler ok.mjs, one thread) on a fresh stream and group `g`, with the
 * real Resources and handler pool: `read()` runs its readBatch step once, as consumer `c`; `add()`
 * publishes an entry whose handler run lands in the `seen` stream. `over` changes the consumer's
 * settings; `others` are more consumers of the same stream and group.
 */
export async function readerSetup(
  t: TestContext,
  over: Record<string, unknown> = {},
  others: Record<string, unknown>[] = [],
) {
  const { redis, key } = testRedis(t)
  const stream = key('orders')
  const seen = key('seen')
  const consumer = { stream, group: 'g', handler: path.join(FIXTURES, 'ok.mjs'), payloadFormat: 'json' }
  const file = writeConfig(t, {
    consumers: [
      { ...consumer, name: 'orders', concurrency: 1, ...over },
      ...others.map((o) => ({ ...consumer, ...o })),
    ],
  })
  const config = loadConfig({ file, env: { REDIS_URL, ACKSTATE_STORE_ENABLED: 'false' } })
  const res = new Resources(config, testLogger('info').log, createPools(config))
  t.after(() => res.close(true))
  await redis.xgroup('CREATE', stream, 'g', '0', 'MKSTREAM')
  const input = { name: 'orders', stream, group: 'g', consumer: 'c', count: 10, blockMs: 100 }
  const read = () => toPromise(createActor(readBatch(res), { input }).start())
  const add = (id: string, payload = '{}') =>
    redis.xadd(stream, '*', 'id', id, 'payload', payload, 'seen', seen)
  const rules = dedupeRules(config.consumers[0]!)
  return { redis, stream, seen, res, config, input, read, add, rules, target: { stream, group: 'g' } }
}
