import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { test } from 'node:test'
import { startHttp } from '../../src/http/server.js'
import { createLogger } from '../../src/log.js'
import { FIXTURES } from '../support/daemon.js'
import { eventually, testRedis } from '../support/redis.js'
import { startTestRuntime } from '../support/runtime.js'

test('/healthz answers, /readyz reports each consumer and turns ready once they consume', async (t) => {
  const { key } = testRedis(t)
  const { runtime } = await startTestRuntime(t, {
    consumers: [
      { name: 'orders', stream: key('orders'), handler: path.join(FIXTURES, 'ok.mjs'), blockMs: 50 },
    ],
  })
  const server = await startHttp(0, runtime, createLogger('silent'))
  t.after(() => server.close())
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  const health = await fetch(`${base}/healthz`)
  assert.deepEqual(
    { status: health.status, body: await health.json() },
    { status: 200, body: { status: 'ok' } },
  )

  const ready = await eventually(
    async () => {
      const res = await fetch(`${base}/readyz`)
      return res.status === 200 && (await res.json())
    },
    { what: '/readyz to answer 200' },
  )
  const state = (ready as { consumers: Record<string, string> }).consumers['consumer-orders']
  assert.match(state!, /^reading\.|^processing$|^acking$/)
  assert.equal((ready as { status: string }).status, 'ready')

  runtime.shutdown()
  await runtime.done
  const drained = await fetch(`${base}/readyz`)
  assert.equal(drained.status, 503)
  assert.equal((await fetch(`${base}/nope`)).status, 404)
})
