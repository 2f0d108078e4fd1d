import type http from 'node:http'
import { asset } from '../debug/assets.js'
import { CHART_NAMES, chartSvg } from '../debug/charts.js'
import type { DebugHub } from '../debug/hub.js'
import type { ActorView } from '../debug/view.js'
import { sendJson, type Route, type RouteContext, type RouteTable } from './server.js'

/**
 * The live debug page (`debug.enabled`): /debug and its files, a chart per machine, the state as JSON
 * and a server-sent-event stream of changes. No route exists unless the daemon made a hub, so a
 * production daemon without the flag answers 404 here.
 */

// Everything comes from this server: no CDN, no external fonts, and a page that cannot send what it
// shows anywhere else.
const CSP = "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/** Heartbeat comment on an idle stream, so proxies (Heroku's router drops idle ones at 55 s) keep it. */
const PING_MS = 15_000

/** A client this far behind gets no more pushes until it caught up; every push carries whole views. */
const MAX_BUFFERED_BYTES = 1 << 20

const file =
  (name: string): Route =>
  (_req, res) => {
    const { type, body } = asset(name)
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-cache', 'content-security-policy': CSP })
    res.end(body)
  }

const chart =
  (name: string): Route =>
  async (_req, res) => {
    const svg = await chartSvg(name)
    res.writeHead(200, { 'content-type': 'image/svg+xml', 'cache-control': 'no-cache' }).end(svg)
  }

/** `snapshot` once with every actor, then `actors` with those that changed, at most every 100 ms. */
function events(hub: DebugHub, req: http.IncomingMessage, res: http.ServerResponse): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    // nginx and some routers buffer responses unless told not to.
    'x-accel-buffering': 'no',
  })
  const send = (event: string, data: unknown) => {
    if (res.writableLength > MAX_BUFFERED_BYTES) return
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
  }
  send('snapshot', hub.state())
  const ping = setInterval(() => res.write(': ping\n\n'), PING_MS)
  const unsubscribe = hub.subscribe({
    push: (actors: ActorView[]) => send('actors', actors),
    end: () => res.end(),
  })
  req.once('close', () => {
    clearInterval(ping)
    unsubscribe()
  })
}

export function debugRoutes({ debug }: RouteContext): RouteTable {
  if (!debug) return {}
  return {
    '/debug': file('index.html'),
    '/debug/app.js': file('app.js'),
    '/debug/style.css': file('style.css'),
    '/debug/favicon.svg': file('favicon.svg'),
    ...Object.fromEntries(CHART_NAMES.map((name) => [`/debug/charts/${name}.svg`, chart(name)])),
    '/debug/state': (_req, res) => sendJson(res, 200, debug.state()),
    '/debug/events': (req, res) => events(debug, req, res),
  }
}
