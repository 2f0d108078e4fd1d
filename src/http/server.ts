import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { DebugHub } from '../debug/hub.js'
import type { Logger } from '../log.js'
import type { Metrics } from '../metrics/index.js'
import type { Runtime } from '../runtime.js'
import { debugRoutes } from './debug.js'
import { healthRoutes } from './health.js'
import { metricsRoutes } from './metrics.js'

/**
 * One route: answers a request whose path (without the query) matches. Each feature adds its routes
 * in its own file (health.ts; metrics and the debug view alongside), so this file stays the plumbing.
 */
export type Route = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => void | Promise<void>

/** What the route files get to build their routes from. */
export interface RouteContext {
  runtime: Runtime
  log: Logger
  /** The debug view's hub when `debug.enabled` (and PORT) are set; its routes exist only then. */
  debug?: DebugHub
  /** The Prometheus registry the daemon builds with PORT set; /metrics exists only then. */
  metrics?: Metrics
}

export type RouteTable = Record<string, Route>

/** Sends a JSON body. */
export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
}

/** Every route the daemon serves; a feature adds its table here. */
export function routes(ctx: RouteContext): RouteTable {
  return { ...healthRoutes(ctx), ...debugRoutes(ctx), ...metricsRoutes(ctx) }
}

/** The daemon's HTTP server on PORT (when set): health, and whatever `routes()` adds. */
export function startHttp(
  port: number,
  runtime: Runtime,
  log: Logger,
  extra: Pick<RouteContext, 'debug' | 'metrics'> = {},
): Promise<http.Server> {
  const table = routes({ runtime, log, ...extra })
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    const route = table[url.pathname]
    if (!route) return sendJson(res, 404, { error: 'not found', paths: Object.keys(table) })
    Promise.resolve(route(req, res, url)).catch((err: unknown) => {
      log.error({ err, path: url.pathname }, 'http route failed')
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' })
      else res.end()
    })
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '0.0.0.0', () => {
      // The bound port, not the configured one: PORT=0 picks a free port (the tests do).
      log.info({ port: (server.address() as AddressInfo).port }, 'http server listening')
      resolve(server)
    })
  })
}
