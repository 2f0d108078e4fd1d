import http from 'node:http'
import type { ActorRefFrom } from 'xstate'
import type { consumerMachine } from '../machines/consumerMachine.js'
import type { Runtime } from './runtime.js'
import { stateName } from './inspect.js'
import type { Logger } from './log.js'

/** Readiness: the supervisor runs and no consumer is disconnected or stopped. */
export function readiness(runtime: Runtime): { ready: boolean; consumers: Record<string, string> } {
  const snap = runtime.actor.getSnapshot()
  const consumers: Record<string, string> = {}
  for (const [id, child] of Object.entries(snap.children)) {
    if (id.startsWith('consumer-'))
      consumers[id] = stateName((child as ActorRefFrom<typeof consumerMachine>).getSnapshot().value)
  }
  const states = Object.values(consumers)
  const ready =
    snap.value === 'running' &&
    states.length > 0 &&
    states.every(
      (s) => !s.startsWith('disconnected') && !s.startsWith('stopped') && !s.startsWith('starting'),
    )
  return { ready, consumers }
}

/** /healthz (the process answers) and /readyz (connected and consuming), on PORT when set. */
export function startHttp(port: number, runtime: Runtime, log: Logger): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
    }
    if (req.url === '/healthz') return send(200, { status: 'ok' })
    if (req.url === '/readyz') {
      const r = readiness(runtime)
      return send(r.ready ? 200 : 503, { status: r.ready ? 'ready' : 'not ready', consumers: r.consumers })
    }
    send(404, { error: 'not found', paths: ['/healthz', '/readyz'] })
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '0.0.0.0', () => {
      log.info({ port }, 'http server listening')
      resolve(server)
    })
  })
}
