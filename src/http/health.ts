import type { ActorRefFrom } from 'xstate'
import type { consumerMachine } from '../../machines/consumerMachine.js'
import { stateName } from '../inspect.js'
import type { Runtime } from '../runtime.js'
import { sendJson, type RouteContext, type RouteTable } from './server.js'

/** Readiness: the supervisor runs and no consumer is disconnected, starting or stopped. */
export function readiness(runtime: Runtime): { ready: boolean; consumers: Record<string, string> } {
  const snap = runtime.actor.getSnapshot()
  const consumers: Record<string, string> = {}
  for (const [id, child] of Object.entries(snap.children)) {
    if (id.startsWith('consumer-')) {
      consumers[id] = stateName((child as ActorRefFrom<typeof consumerMachine>).getSnapshot().value)
    }
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

/** /healthz: the process answers. /readyz: connected and consuming. */
export function healthRoutes({ runtime }: RouteContext): RouteTable {
  return {
    '/healthz': (_req, res) => sendJson(res, 200, { status: 'ok' }),
    '/readyz': (_req, res) => {
      const r = readiness(runtime)
      sendJson(res, r.ready ? 200 : 503, { status: r.ready ? 'ready' : 'not ready', consumers: r.consumers })
    },
  }
}
