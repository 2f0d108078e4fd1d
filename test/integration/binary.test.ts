import assert from 'node:assert/strict'
import path from 'node:path'
import { test } from 'node:test'
import { readDeadLetters } from '../../src/dlq/read.js'
import { replayLetters } from '../../src/dlq/replay.js'
import { FIXTURES } from '../support/daemon.js'
import { query } from '../support/postgres.js'
import { eventually, pendingCount, testRedis, waitForEntries } from '../support/redis.js'
import { startTestRuntime } from '../support/runtime.js'
import { migratedStore } from '../support/store.js'

const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i))

test('a binary consumer hands its handler the payload as bytes, all 256 byte values intact, and dead-letters them byte for byte', async (t) => {
  const { redis, key } = testRedis(t)
  const { db } = await migratedStore(t)
  const stream = key('blobs')
  const seen = key('seen')
  const handler = path.join(FIXTURES, 'recordsBytes.mjs')
  await startTestRuntime(
    t,
    {
      consumers: [
        {
          name: 'blobs',
          stream,
          group: 'g',
          handler,
          payloadFormat: 'binary',
          maxPayloadBytes: 256,
          retryBaseMs: 50,
          retryJitter: 0,
        },
      ],
    },
    { databaseUrl: db.url },
  )
  await redis.xadd(stream, '*', 'id', 'b-1', 'payload', ALL_BYTES, 'seen', seen)
  await redis.xadd(stream, '*', 'id', 'b-2', 'payload', ALL_BYTES, 'seen', seen, 'fail', '1')
  // Its retry is claimed from the PEL (XCLAIM), read as bytes too.
  await redis.xadd(stream, '*', 'id', 'b-3', 'payload', ALL_BYTES, 'seen', seen, 'failOnce', '1')
  const runs = await waitForEntries(redis, seen, 4)
  assert.deepEqual(runs, Array(4).fill({ type: 'bytes', hex: ALL_BYTES.toString('hex') }))
  await eventually(async () => (await pendingCount(redis, stream, 'g')) === 0, { what: 'the XACKs' })
  const [letter] = await redis.xrangeBuffer(`{${stream}}:dlq`, '-', '+')
  const fields = letter![1]
  const at = fields.findIndex((f) => f.toString() === 'payload')
  assert.ok(fields[at + 1]!.equals(ALL_BYTES), 'the dead-letter stream holds the bytes as they were')
  const rows = await eventually(
    () =>
      query<{ payload: string; encoding: string }>(
        db.url,
        `SELECT payload, fields->>'dlq.payloadEncoding' AS encoding FROM dead_letter`,
      ).then((r) => r.length === 1 && r),
    { what: 'the dead_letter row' },
  )
  assert.deepEqual(rows, [{ payload: ALL_BYTES.toString('base64'), encoding: 'base64' }])

  // A replay puts the bytes back as they were: the handler sees them intact once more.
  const replayed = await replayLetters(redis, await readDeadLetters(redis, { streams: [stream] }))
  assert.deepEqual(
    replayed.map((r) => [r.id, r.status]),
    [['b-2', 'replayed']],
  )
  assert.deepEqual((await waitForEntries(redis, seen, 5))[4], {
    type: 'bytes',
    hex: ALL_BYTES.toString('hex'),
  })
})

test('a text consumer (the default) still receives the payload as a UTF-8 string', async (t) => {
  const { redis, key } = testRedis(t)
  const stream = key('texts')
  const seen = key('seen')
  await startTestRuntime(t, {
    consumers: [{ name: 'texts', stream, group: 'g', handler: path.join(FIXTURES, 'recordsBytes.mjs') }],
  })
  await redis.xadd(stream, '*', 'payload', 'héllo', 'seen', seen)
  assert.deepEqual(await waitForEntries(redis, seen, 1), [
    { type: 'string', hex: Buffer.from('héllo').toString('hex') },
  ])
})
