import assert from 'node:assert/strict'
import path from 'node:path'
import { test } from 'node:test'
import { createActor, toPromise } from 'xstate'
import { readBatch } from '../../src/actors/readBatch.js'
import { ClaimsAhead } from '../../src/actors/claimAhead.js'
import { loadConfig } from '../../src/config.js'
import { dedupeRules, readMark } from '../../src/redis/dedupe.js'
import { Resources } from '../../src/resources.js'
import { FIXTURES, writeConfig } from '../support/daemon.js'
import { entry } from '../support/machine.js'
import { testLogger } from '../support/postgres.js'
import { REDIS_URL, testRedis } from '../support/redis.js'

test('a batch is claimed for deduplication as it is read, before the machine steps to processing', async (t) => {
  const { redis, key } = testRedis(t)
  const stream = key('orders')
  const file = writeConfig(t, {
    consumers: [
      { name: 'orders', stream, group: 'g', handler: path.join(FIXTURES, 'ok.mjs'), payloadFormat: 'json' },
    ],
  })
  const config = loadConfig({ file, env: { REDIS_URL, ACKSTATE_STORE_ENABLED: 'false' } })
  const res = new Resources(config, testLogger('info').log, new Map())
  t.after(() => res.close(false))
  await redis.xgroup('CREATE', stream, 'g', '0', 'MKSTREAM')
  await redis.xadd(stream, '*', 'id', 'o-1', 'payload', '{}')
  await redis.xadd(stream, '*', 'id', 'o-2', 'payload', 'not json')

  const input = { name: 'orders', stream, group: 'g', consumer: 'c', count: 10, blockMs: 100 }
  const entries = await toPromise(createActor(readBatch(res), { input }).start())
  assert.deepEqual(
    entries.map((e) => e.id),
    ['o-1', 'o-2'],
  )
  const rules = dedupeRules(config.consumers[0]!)
  const target = { stream, group: 'g' }
  const ahead = res.claimsAhead.take('orders', entries)
  assert.ok(ahead?.claims, 'the read sent the claim')
  assert.deepEqual(await ahead.claims, ['run'])
  const mark = await readMark(redis, target, 'o-1', rules)
  assert.equal(typeof mark === 'object' && mark?.entryId, entries[0]!.entryId, 'o-1 is claimed by its entry')
  assert.equal(
    await readMark(redis, target, 'o-2', rules),
    null,
    'an entry that cannot be a message is not claimed',
  )
  assert.deepEqual([...ahead.rejected.keys()], [entries[1]!.entryId])
})

test('a claim sent ahead serves only the batch it was made for, and only once', () => {
  const claims = new ClaimsAhead()
  const rules = { dedupeTtlMs: 0, payloadFormat: 'json', maxPayloadBytes: 1_000 } as never
  const batch = [entry('1-0'), entry('2-0', { payload: 'not json' })]
  // With deduplication off nothing goes to Redis: only the sorting is kept.
  claims.start('orders', null as never, { stream: 's', group: 'g' }, batch, rules)
  assert.equal(claims.take('orders', [...batch]), null, 'another array is another batch')
  claims.start('orders', null as never, { stream: 's', group: 'g' }, batch, rules)
  assert.equal(claims.take('other', batch), null, 'another consumer has none')
  const ahead = claims.take('orders', batch)
  assert.deepEqual(
    ahead && {
      present: ahead.present.map((e) => e.entryId),
      rejected: [...ahead.rejected.keys()],
      claims: ahead.claims,
    },
    { present: ['1-0'], rejected: ['2-0'], claims: null },
  )
  assert.equal(claims.take('orders', batch), null, 'taken once')
})
