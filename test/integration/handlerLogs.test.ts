import path from 'node:path'
import { test } from 'node:test'
import { ROOT, runCli, writeConfig } from '../support/daemon.js'
import { testRedis } from '../support/redis.js'

test("a handler's log lines reach stdout while its worker thread waits for the next task", async (t) => {
  const { redis, key } = testRedis(t)
  const stream = key('orders')
  // One thread, so every message runs on the thread that logged the one before.
  const config = writeConfig(t, {
    consumers: [
      {
        name: 'orders',
        stream,
        group: 'g',
        handler: path.join(ROOT, 'config/handlers/orders.mjs'),
        concurrency: 1,
      },
    ],
  })
  const daemon = runCli(t, ['start', '--config', config])
  await daemon.waitForLog((l) => l.msg === 'consumer group created')
  for (const id of ['o-1', 'o-2', 'o-3']) {
    await redis.xadd(stream, '*', 'id', id, 'payload', '{"total":1}')
    // No next task comes to wake the thread: the line must be out on its own.
    await daemon.waitForLog((l) => l.msg === 'order handled' && l.id === id, 5_000)
  }
  daemon.child.kill('SIGTERM')
  await daemon.exited
})
