import assert from 'node:assert/strict'
import { test } from 'node:test'
import { checkKeySlots, keySets, slotProblems } from '../../src/redis/slotCheck.js'
import { hashTag, keySlot } from '../../src/redis/slots.js'
import { classify } from '../../src/redis/errors.js'

test('keySlot follows the cluster specification, hash tags included', () => {
  // Values from the specification and CLUSTER KEYSLOT (test/integration/cluster.test.ts compares live).
  assert.equal(keySlot('foo'), 12182)
  assert.equal(keySlot('123456789'), 12739)
  assert.equal(keySlot('{user1000}.following'), keySlot('user1000'))
  assert.equal(keySlot('{orders}:dlq'), keySlot('orders'))
  assert.deepEqual(['{}x', 'a{}b{c}', 'a{b', 'a}b{c}', '{a}{b}'].map(hashTag), [
    '{}x',
    'a{}b{c}',
    'a{b',
    'c',
    'a',
  ])
})

test("every key set of a stream's commands and scripts shares the stream's slot", () => {
  for (const stream of ['orders', 'payments:eu', 'ü', 'a.b-c_d']) {
    assert.deepEqual(slotProblems(stream, 'billing'), [], stream)
    // Group and message ids may hold braces: the stream's tag comes first and decides.
    assert.deepEqual(slotProblems(stream, '{g}'), [], stream)
  }
  assert.deepEqual(Object.keys(keySets('orders', 'g')), [
    'dead-letter stream',
    'claim and settle scripts',
    'recovery lock',
  ])
})

test('the start-up check refuses a stream whose derived keys would land in another slot', () => {
  // Braces in a stream name are refused by the consumer check already; the slot check does not rely on it.
  assert.match(
    slotProblems('a}b', 'g')[0]!,
    /^dead-letter stream key "\{a\}b\}:dlq" hashes to slot \d+, the stream to \d+$/,
  )
  assert.throws(() => checkKeySlots([{ name: 'odd', stream: 'a}b', group: 'g' }], '/app/config.json'), {
    code: 'ACK_ERR_CONFIG',
    message:
      /^Invalid config in \/app\/config\.json: consumers "odd" \(stream "a\}b"\): dead-letter stream key .* on Redis Cluster its commands would fail with CROSSSLOT/,
  })
  assert.doesNotThrow(() =>
    checkKeySlots([{ name: 'orders', stream: 'orders', group: 'g' }], '/app/config.json'),
  )
})

test('failover and Cluster errors mean "wait for Redis", a CROSSSLOT is a real error', () => {
  const code = (message: string, name?: string) =>
    classify(Object.assign(new Error(message), name ? { name } : {}), 'cmd').code
  for (const message of [
    'CLUSTERDOWN The cluster is down',
    'TRYAGAIN Multiple keys request during rehashing of slot',
    "READONLY You can't write against a read only replica.",
    'MOVED 105 127.0.0.1:7001',
    'ASK 105 127.0.0.1:7001',
    'Too many Cluster redirections. Last error: Error: Connection is closed.',
    'None of startup nodes is available',
    "Socket timeout. Expecting data, but didn't receive any in 1500ms.",
    'Command timed out',
    "ERR Error running script (call to f_1): @user_script:3: -READONLY You can't write against a read only replica.",
    'UNBLOCKED the stream key no longer exists',
  ])
    assert.equal(code(message), 'ACK_ERR_REDIS_UNAVAILABLE', message)
  assert.equal(code('Failed to refresh slots cache.', 'ClusterAllFailedError'), 'ACK_ERR_REDIS_UNAVAILABLE')
  assert.equal(code("CROSSSLOT Keys in request don't hash to the same slot"), 'ACK_ERR_REDIS_COMMAND')
  assert.equal(
    code('ERR Error running script: @user_script:1: wrong number of arguments'),
    'ACK_ERR_REDIS_COMMAND',
  )
})
