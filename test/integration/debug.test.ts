import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { test, type TestContext } from 'node:test'
import { DebugHub } from '../../src/debug/hub.js'
import type { ActorView } from '../../src/debug/view.js'
import { startHttp } from '../../src/http/server.js'
import { createLogger } from '../../src/log.js'
import { FIXTURES } from '../support/daemon.js'
import { eventually, testRedis } from '../support/redis.js'
import { startTestRuntime } from '../support/runtime.js'

interface ServerEvent {
  event: string
  data: unknown
}

/** Reads /debug/events as a client would; `next(match)` waits for the first matching event. */
async function openEvents(t: TestContext, url: string) {
  const abort = new AbortController()
  t.after(() => abort.abort())
  const res = await fetch(url, { signal: abort.signal })
  assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8')
  const events: ServerEvent[] = []
  void (async () => {
    let buffer = ''
    try {
      for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
        buffer += chunk
        let end: number
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const field = (name: string) => /^(\w+): (.*)$/gm.exec(block)?.[1] === name
          if (block.startsWith(':') || !field('event')) continue // a heartbeat comment
          const event = /^event: (.*)$/m.exec(block)![1]!
          events.push({ event, data: JSON.parse(/^data: (.*)$/m.exec(block)![1]!) })
        }
      }
    } catch {
      // Aborted when the test ends.
    }
  })()
  return {
    events,
    next: (what: string, match: (e: ServerEvent) => boolean) =>
      eventually(() => events.find(match), { what, timeoutMs: 10_000 }),
  }
}

const consumerIn = (e: ServerEvent): ActorView | undefined =>
  e.event === 'actors' ? (e.data as ActorView[]).find((a) => a.id === 'consumer-orders') : undefined

test('/debug/state and /debug/events follow a consumer through a batch; the page and charts are served', async (t) => {
  const { redis, key } = testRedis(t)
  const stream = key('orders')
  const hub = new DebugHub()
  const { runtime } = await startTestRuntime(
    t,
    { consumers: [{ name: 'orders', stream, handler: path.join(FIXTURES, 'slow.mjs'), blockMs: 50 }] },
    { inspectors: [hub.observe] },
  )
  const server = await startHttp(0, runtime, createLogger('silent'), { debug: hub })
  t.after(() => {
    hub.close()
    server.close()
  })
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  const state = await eventually(
    async () => {
      const body = (await (await fetch(`${base}/debug/state`)).json()) as { actors: ActorView[] }
      return body.actors.length === 3 && body
    },
    { what: 'supervisor, consumer and reclaimer in /debug/state' },
  )
  assert.deepEqual(
    state.actors.map((a) => [a.id, a.machine, a.chart]),
    [
      ['supervisor', 'supervisor', '/debug/charts/supervisor.svg'],
      ['consumer-orders', 'consumer', '/debug/charts/consumer.svg'],
      ['reclaimer', 'reclaimer', '/debug/charts/reclaimer.svg'],
    ],
  )
  assert.deepEqual(
    { state: state.actors[0]!.state, counters: state.actors[0]!.counters },
    { state: 'running', counters: { running: 2 } },
  )

  const sse = await openEvents(t, `${base}/debug/events`)
  await sse.next('the snapshot event', (e) => e.event === 'snapshot')

  // One transaction, so the blocked XREADGROUP sees both entries in one batch.
  const tx = await redis
    .multi()
    .xadd(stream, '*', 'payload', '{"n":1}', 'ms', '400')
    .xadd(stream, '*', 'payload', '{"n":2}', 'ms', '400')
    .exec()
  const entryIds = tx!.map(([, id]) => id as string)

  const processing = consumerIn(
    await sse.next('the consumer processing the batch', (e) => consumerIn(e)?.state === 'processing'),
  )!
  assert.deepEqual(processing.batch, {
    size: 2,
    entries: entryIds.map((entryId, i) => ({
      entryId,
      id: entryId,
      attempt: 1,
      status: 'in flight',
      preview: `{"n":${i + 1}}`,
    })),
  })
  assert.deepEqual(processing.active, ['consumer', 'consumer.processing'])

  const settled = consumerIn(
    await sse.next('the batch acked', (e) => (consumerIn(e)?.counters.acked ?? 0) >= 2),
  )!
  assert.ok(
    settled.transitions.some(
      (t) => t.from === 'processing' && t.to === 'acking' && t.trigger === 'done processBatch',
    ),
    JSON.stringify(settled.transitions.slice(-5)),
  )
  assert.deepEqual(
    { read: settled.counters.read, handled: settled.counters.handled, acked: settled.counters.acked },
    { read: 2, handled: 2, acked: 2 },
  )

  const page = await fetch(`${base}/debug`)
  assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8')
  assert.match(page.headers.get('content-security-policy')!, /default-src 'self'/)
  const html = await page.text()
  assert.match(html, /<script src="\/debug\/app\.js" defer><\/script>/)
  assert.doesNotMatch(html, /https?:\/\//, 'nothing is loaded from elsewhere')
  for (const [file, type] of [
    ['app.js', 'text/javascript; charset=utf-8'],
    ['style.css', 'text/css; charset=utf-8'],
  ]) {
    const res = await fetch(`${base}/debug/${file}`)
    assert.deepEqual([res.status, res.headers.get('content-type')], [200, type])
    assert.doesNotMatch(await res.text(), /https?:\/\/(?!www\.w3\.org)/)
  }
  const chart = await fetch(`${base}/debug/charts/consumer.svg`)
  assert.equal(chart.headers.get('content-type'), 'image/svg+xml')
  assert.match(await chart.text(), /<title>consumer\.processing<\/title>/)

  // Without a hub (debug.enabled false) none of it exists.
  const plain = await startHttp(0, runtime, createLogger('silent'))
  t.after(() => plain.close())
  const off = await fetch(`http://127.0.0.1:${(plain.address() as AddressInfo).port}/debug`)
  assert.equal(off.status, 404)
})
