import assert from 'node:assert/strict'
import { test } from 'node:test'
import { addEntries, ENTRIES_PER_CALL } from '../../src/redis/addEntries.js'
import { readAll, testRedis } from '../support/redis.js'

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
