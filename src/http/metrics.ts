import type { RouteContext, RouteTable } from './server.js'

/** /metrics: Prometheus text format. Present only when the daemon built its metrics (PORT set). */
export function metricsRoutes({ metrics }: RouteContext): RouteTable {
  if (!metrics) return {}
  return {
    '/metrics': async (_req, res) => {
      const body = await metrics.registry.metrics()
      res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body)
    },
  }
}
