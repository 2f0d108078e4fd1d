import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import { Script } from '../../src/redis/script.js'
import { testRedis } from '../support/redis.js'

test('a script goes by its SHA1, and by its text only while the server does not know it', async (t) => {
  const { redis, key } = testRedis(t)
  // A text no server has seen: the first call meets NOSCRIPT.
  const script = new Script(`-- ${randomUUID()}\nreturn redis.call('INCR', KEYS[1]) .. ':' .. ARGV[1]`)
  const [known] = (await redis.script('EXISTS', script.sha)) as number[]
  assert.equal(known, 0)
  assert.equal(await script.run(redis, 1, key('n'), 'a'), '1:a')
  assert.deepEqual(await redis.script('EXISTS', script.sha), [1], 'the EVAL cached it')
  assert.equal(await script.run(redis, 1, key('n'), 'b'), '2:b')
})

test('an error of the script itself is not taken for a missing script', async (t) => {
  const { redis, key } = testRedis(t)
  const script = new Script(`-- ${randomUUID()}\nreturn redis.call('INCR', KEYS[1])`)
  await redis.set(key('s'), 'not a number')
  await assert.rejects(script.run(redis, 1, key('s')), /not an integer/)
  await assert.rejects(script.run(redis, 1, key('s')), /not an integer/, 'nor the second time, by SHA1')
})
