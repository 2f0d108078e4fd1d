import assert from 'node:assert/strict'
import { test } from 'node:test'
import { addEntries, ENTRIES_PER_CALL } from '../../src/redis/addEntries.js'
import { eventually, readAll, testRedis } from '../support/redis.js'

interface Item {
  stream: string
  n: number
}

const fields = (item: Item) => ['id', `m-${item.n}`, 'payload', String(item.n)]

test('addEntries adds every item to its stream in item order, across streams and call boundaries', async (t) => {
  const { redis, key } = testRedis(t)
  const [a, b] = [key('a'), key('b')]
  // Interleaved streams, and more items for `a` than one script call carries.
  const items: Item[] = Array.from({ length: ENTRIES_PER_CALL * 2 + 7 }, (_, n) => ({
    stream: n % 3 === 0 ? b : a,
    n,
  }))
  const replies = await addEntries(redis, items, (i) => i.stream, fields)

  assert.equal(replies.length, items.length)
  assert.ok(replies.every(([err, id]) => err === null && typeof id === 'string'))
  for (const stream of [a, b]) {
    const mine = items
      .map((item, i) => ({ item, entryId: replies[i]![1] }))
      .filter((x) => x.item.stream === stream)
    const entries = await readAll(redis, stream)
    assert.deepEqual(
      entries.map(([entryId, f]) => ({ entryId, id: f.id, payload: f.payload })),
      mine.map(({ item, entryId }) => ({ entryId, id: `m-${item.n}`, payload: String(item.n) })),
      `${stream}: the entries, their ids and their order are the items'`,
    )
  }
})

test('addEntries gives a refused stream its error and still adds the other streams', async (t) => {
  const { redis, key } = testRedis(t)
  const [good, wrongType] = [key('good'), key('not-a-stream')]
  await redis.set(wrongType, 'a string')
  const items: Item[] = [
    { stream: good, n: 1 },
    { stream: wrongType, n: 2 },
    { stream: good, n: 3 },
  ]
  const replies = await addEntries(redis, items, (i) => i.stream, fields)

  assert.equal(replies[0]![0], null)
  assert.match(String(replies[1]![0]), /WRONGTYPE/)
  assert.equal(replies[1]![1], null)
  assert.equal(replies[2]![0], null)
  assert.deepEqual(
    (await readAll(redis, good)).map(([, f]) => f.id),
    ['m-1', 'm-3'],
  )
  assert.equal(await redis.type(wrongType), 'string', 'nothing was added to the refused key')
})

test('addEntries keeps every field byte for byte: empty, long, multi-byte, and the widths of each header', async (t) => {
  const { redis, key } = testRedis(t)
  const stream = key('texts')
  const texts = [
    '',
    'x'.repeat(10),
    'x'.repeat(11),
    'x'.repeat(86),
    'x'.repeat(21_846),
    'x'.repeat(70_000),
    'naïve café 日本語 😀',
    'tab\tnew\nline\\ "quoted" \u0000',
  ]
  const items = texts.map((text, n) => ({ stream, fields: ['id', `t-${n}`, 'payload', text, 'extra', text] }))
  // One entry with many fields (a list header of more than 15).
  items.push({
    stream,
    fields: ['id', 'many', ...Array.from({ length: 40 }, (_, i) => [`f${i}`, `v${i}`]).flat()],
  })
  const replies = await addEntries(
    redis,
    items,
    (i) => i.stream,
    (i) => i.fields,
  )

  assert.ok(replies.every(([err]) => err === null))
  const entries = await readAll(redis, stream)
  assert.deepEqual(
    entries.map(([, f]) => f),
    items.map((i) => {
      const pairs: Record<string, string> = {}
      for (let k = 0; k < i.fields.length; k += 2) pairs[i.fields[k]!] = i.fields[k + 1]!
      return pairs
    }),
  )
})

test('addEntries cuts a run into several calls once its fields pass the size limit', async (t) => {
  const { redis, key } = testRedis(t)
  const stream = key('large')
  let calls = 0
  let marked = false
  const monitor = await redis.monitor()
  t.after(() => monitor.disconnect())
  monitor.on('monitor', (_time: string, args: string[]) => {
    const command = args[0]?.toUpperCase()
    if (command === 'EVAL' && args[3] === stream) calls++
    if (command === 'EXISTS' && args[1] === stream) marked = true
  })
  // The limit scaled down (the real one is 16M UTF-16 units); each entry's fields count 2 + 3 + 7 + 60.
  const limit = 100
  const half = 'y'.repeat(60)
  const items = [1, 2, 3].map((n) => ({ stream, n }))
  const replies = await addEntries(
    redis,
    items,
    (i) => i.stream,
    (i) => ['id', `l-${i.n}`, 'payload', half],
    limit,
  )

  assert.ok(replies.every(([err]) => err === null))
  assert.deepEqual(
    (await readAll(redis, stream)).map(([, f]) => [f.id, f.payload!.length]),
    [
      ['l-1', half.length],
      ['l-2', half.length],
      ['l-3', half.length],
    ],
  )
  // MONITOR shows commands in order: once it shows this one, it has shown the script calls.
  await redis.exists(stream)
  await eventually(() => marked, { what: 'MONITOR to show the marker command' })
  assert.equal(calls, 3, 'each entry past half the limit goes in a call of its own')
})
