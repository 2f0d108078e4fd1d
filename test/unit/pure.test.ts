import assert from 'node:assert/strict'
import { test } from 'node:test'
import { decodeEntry, decodeReply } from '../../src/redis/entries.js'
import { deadLetterKey, tag } from '../../src/redis/keys.js'
import { classify } from '../../src/redis/errors.js'
import { uuidv7 } from '../../src/ids.js'
import { encodeMessage } from '../../src/publish.js'
import { split } from '../../src/pool/chunks.js'
import { CapacityGate } from '../../src/pool/capacityGate.js'
import { consumerName } from '../../src/redis/consumerName.js'

test('an entry without an id field uses its entry id; extra fields pass through', () => {
  assert.deepEqual(decodeEntry('5-0', ['payload', '{"a":1}', 'source', 'cli', 'trace', 'x']), {
    id: '5-0',
    entryId: '5-0',
    payload: '{"a":1}',
    headers: {},
    fields: { source: 'cli', trace: 'x' },
    attempt: 1,
  })
})

test('an entry with id and JSON headers decodes into the wire format', () => {
  assert.deepEqual(
    decodeEntry('6-0', ['id', 'o-1', 'payload', 'x', 'headers', '{"content-type":"text/plain","n":2}']),
    {
      id: 'o-1',
      entryId: '6-0',
      payload: 'x',
      headers: { 'content-type': 'text/plain', n: '2' },
      fields: {},
      attempt: 1,
    },
  )
})

test('headers that are not a JSON object stay as a plain field', () => {
  assert.deepEqual(decodeEntry('7-0', ['headers', 'not json']).fields, { headers: 'not json' })
})

test('an entry whose fields are gone decodes with a null payload', () => {
  assert.deepEqual(decodeEntry('8-0', null), {
    id: '8-0',
    entryId: '8-0',
    payload: null,
    headers: {},
    fields: {},
    attempt: 1,
  })
  assert.deepEqual(decodeReply(null), [])
})

test("derived keys share the stream's hash slot", () => {
  assert.equal(tag('orders'), '{orders}')
  assert.equal(deadLetterKey('orders'), '{orders}:dlq')
})

test('classify maps ioredis failures onto the codes the machines branch on', () => {
  const cases: [unknown, string][] = [
    [Object.assign(new Error('NOGROUP No such key'), { name: 'ReplyError' }), 'ACK_ERR_GROUP_MISSING'],
    [
      Object.assign(new Error('Reached the max retries'), { name: 'MaxRetriesPerRequestError' }),
      'ACK_ERR_REDIS_UNAVAILABLE',
    ],
    [Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 'ACK_ERR_REDIS_UNAVAILABLE'],
    [new Error('LOADING Redis is loading the dataset in memory'), 'ACK_ERR_REDIS_UNAVAILABLE'],
    [new Error("READONLY You can't write against a read only replica."), 'ACK_ERR_REDIS_UNAVAILABLE'],
    [new Error('WRONGTYPE Operation against a key holding the wrong kind of value'), 'ACK_ERR_REDIS_COMMAND'],
    [new Error("OOM command not allowed when used memory > 'maxmemory'."), 'ACK_ERR_REDIS_OUT_OF_MEMORY'],
    [
      new Error("OOM command not allowed when used memory > 'maxmemory'. script: 1649, on @user_script:3."),
      'ACK_ERR_REDIS_OUT_OF_MEMORY',
    ],
    [
      new Error('ERR Error running script (call to f_1649): @user_script:3: -OOM command not allowed'),
      'ACK_ERR_REDIS_OUT_OF_MEMORY',
    ],
  ]
  for (const [err, code] of cases) assert.equal(classify(err, 'X').code, code, String(err))
})

test('uuidv7 ids are version 7, RFC variant, and strictly increasing within a process', () => {
  const ids = Array.from({ length: 5000 }, () => uuidv7(1_700_000_000_000))
  for (const id of ids)
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  assert.deepEqual([...ids].sort(), ids)
  assert.equal(new Set(ids).size, ids.length)
  assert.equal(parseInt(uuidv7(1_800_000_000_000).replace(/-/g, '').slice(0, 12), 16), 1_800_000_000_000)
  // rand_b: 62 random bits, so ids of one millisecond differ past the counter, too.
  const tails = new Set(Array.from({ length: 1000 }, () => uuidv7(1_800_000_000_000).slice(19)))
  assert.equal(tails.size, 1000)
})

test('encodeMessage writes the wire format and refuses what it cannot send', () => {
  const now = new Date('2026-01-01T00:00:00Z')
  assert.deepEqual(
    encodeMessage({ stream: 's', id: 'o-1', payload: { total: 42 }, fields: { source: 'api' } }, now),
    {
      id: 'o-1',
      fields: [
        'id',
        'o-1',
        'payload',
        '{"total":42}',
        'headers',
        '{"published-at":"2026-01-01T00:00:00.000Z"}',
        'source',
        'api',
      ],
    },
  )
  assert.throws(() => encodeMessage({ stream: '', payload: 'x' }), {
    code: 'ACK_ERR_PUBLISH_INVALID',
    message: /`stream`/,
  })
  assert.throws(() => encodeMessage({ stream: 's', payload: 'a\u0000b' }), {
    code: 'ACK_ERR_PUBLISH_INVALID',
    message: /`payload` contains a NUL character \(U\+0000\) at index 1, .*base64/,
  })
  assert.throws(() => encodeMessage({ stream: 's', payload: 'x', headers: { t: '\u0000' } }), {
    message: /header or field "t" contains a NUL character/,
  })
  assert.equal(
    encodeMessage({ stream: 's', payload: { text: 'a\u0000b' } }).fields[3],
    '{"text":"a\\u0000b"}',
  )
  assert.throws(() => encodeMessage({ stream: 's', payload: undefined }), { message: /`payload` is missing/ })
  assert.throws(() => encodeMessage({ stream: 's', payload: 'x', fields: { id: 'y' } }), {
    message: /field "id" is reserved/,
  })
  assert.throws(() => encodeMessage({ stream: 's', payload: 'x', headers: { n: 1 as unknown as string } }), {
    message: /header "n" must be a string/,
  })
})

test('split cuts a batch into at most N near-equal chunks, in order', () => {
  assert.deepEqual(split([1, 2, 3, 4, 5], 2), [
    [1, 2, 3],
    [4, 5],
  ])
  assert.deepEqual(split([1], 4), [[1]])
  assert.deepEqual(split([], 4), [])
  assert.deepEqual(
    split([1, 2, 3, 4, 5, 6, 7], 3).map((c) => c.length),
    [3, 2, 2],
  )
})

test('the capacity gate grants what is free and makes the next reader wait for a release', async () => {
  const gate = new CapacityGate(10)
  assert.equal(await gate.reserve('a', 6), 6)
  assert.equal(await gate.reserve('b', 6), 4)
  let granted: number | undefined
  const waiting = gate.reserve('c', 5).then((n) => (granted = n))
  await new Promise((r) => setImmediate(r))
  assert.equal(granted, undefined, 'a full pool makes the reader wait')
  gate.release('a', 3)
  await waiting
  assert.equal(granted, 3)
  gate.releaseAll('b')
  assert.equal(gate.used, 6)
  gate.release('b', 5)
  assert.equal(gate.used, 6, 'a holder cannot release more than it holds')
})

test('an aborted wait leaves the gate unchanged', async () => {
  const gate = new CapacityGate(1)
  await gate.reserve('a', 1)
  const ac = new AbortController()
  const waiting = gate.reserve('b', 1, ac.signal)
  ac.abort(new Error('stopped'))
  await assert.rejects(waiting, /stopped/)
  gate.release('a', 1)
  assert.equal(gate.used, 0)
})

test('the capacity gate grants a whole batch at once only while it fits and nobody waits', async () => {
  const gate = new CapacityGate(10)
  assert.equal(gate.hasRoomFor(6), true)
  gate.take('a', 6)
  assert.equal(gate.used, 6)
  assert.equal(gate.hasRoomFor(6), false, 'only 4 are free')
  assert.throws(() => gate.take('b', 6), /no room for 6/)
  assert.equal(gate.used, 6, 'a refused take grants nothing')
  assert.equal(await gate.reserve('b', 4), 4)
  const queued = gate.reserve('c', 10)
  assert.equal(gate.hasRoomFor(1), false, 'a full pool has no room')
  gate.release('a', 6)
  assert.equal(await queued, 6, 'the reader that waited got what was freed first')
  gate.release('b', 4)
  assert.equal(gate.hasRoomFor(4), true)
  gate.close()
  assert.equal(gate.hasRoomFor(1), false, 'a closed gate grants nothing')
})

test('consumer names differ per process start and carry host and pid', () => {
  assert.match(consumerName({ DYNO: 'worker.1' }), new RegExp(`^worker\\.1-${process.pid}-[0-9a-f]{8}$`))
})
