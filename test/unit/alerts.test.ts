import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import type { Sequelize } from 'sequelize'
import { parse } from 'yaml'
import type { Config } from '../../src/config.js'
import { createLogger } from '../../src/log.js'
import { createMetrics } from '../../src/metrics/index.js'
import type { Runtime } from '../../src/runtime.js'
import { balanced, metricNames } from '../support/promql.js'

const ROOT = new URL('../../', import.meta.url)
const RULES = new URL('ops/prometheus/alerts.yml', ROOT)
const RULES_TEST = new URL('ops/prometheus/alerts.test.yml', ROOT)
const DASHBOARD = new URL('ops/grafana/dashboard.json', ROOT)

interface Rule {
  alert?: string
  record?: string
  expr: string
  for?: string
  labels?: Record<string, string>
  annotations?: Record<string, string>
}

const rules = () =>
  (parse(readFileSync(RULES, 'utf8')) as { groups: { name: string; rules: Rule[] }[] }).groups.flatMap(
    (g) => g.rules,
  )

/** Every series name the daemon's registry exports (a histogram as its _bucket, _sum and _count). */
function exportedNames(): Set<string> {
  const config = {
    file: '/app/config.json',
    redisUrl: 'redis://127.0.0.1:6379',
    consumers: [{ name: 'orders', stream: 'orders', group: 'orders' }],
  } as Config
  const metrics = createMetrics(createLogger('silent'))
  // Nothing is scraped here: only the runtime's config is read, and a store object only decides
  // whether the backup gauges are registered.
  metrics.attach({ runtime: { config: () => config } as Runtime, pools: new Map(), store: {} as Sequelize })
  try {
    const names = new Set<string>()
    for (const m of metrics.registry.getMetricsAsArray() as unknown as { name: string; type: string }[]) {
      if (m.type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m.name + s)
      else names.add(m.name)
    }
    return names
  } finally {
    metrics.close()
  }
}

const hasPromtool = spawnSync('promtool', ['--version']).status === 0

test('the alert rules are well-formed, with the thresholds the seeds set', () => {
  const all = rules()
  const invalid = all.filter(
    (r) =>
      !r.alert ||
      !balanced(r.expr) ||
      !['warning', 'critical'].includes(r.labels?.severity ?? '') ||
      !r.annotations?.summary ||
      (r.for !== undefined && !/^\d+[smh]$/.test(r.for)),
  )
  assert.deepEqual(invalid, [])
  assert.equal(new Set(all.map((r) => r.alert)).size, all.length, 'alert names are unique')
  const byName = Object.fromEntries(all.map((r) => [r.alert!, r]))
  const pick = (name: string) => {
    const r = byName[name]!
    return { threshold: /> ([\d.]+)\s*$/.exec(r.expr)?.[1], for: r.for, severity: r.labels!.severity }
  }
  assert.deepEqual(
    {
      backlog: pick('AckstateBacklog'),
      failureWarning: pick('AckstateFailureRateHigh'),
      failureCritical: pick('AckstateFailureRateCritical'),
      latency: pick('AckstateHandlerLatencyHigh'),
      deadLetters: pick('AckstateDeadLetters'),
      backup: pick('AckstateBackupUnconfirmed'),
    },
    {
      backlog: { threshold: '1000', for: '5m', severity: 'warning' },
      failureWarning: { threshold: '0.01', for: '5m', severity: 'warning' },
      failureCritical: { threshold: '0.05', for: '1m', severity: 'critical' },
      latency: { threshold: '1', for: '5m', severity: 'warning' },
      deadLetters: { threshold: '0', for: undefined, severity: 'warning' },
      backup: { threshold: '600', for: '5m', severity: 'warning' },
    },
  )
})

test('every metric the alert rules use is one the daemon exports', () => {
  const exported = exportedNames()
  const unknown = rules().flatMap((r) =>
    metricNames(r.expr)
      .filter((n) => !exported.has(n))
      .map((n) => `${r.alert}: ${n}`),
  )
  assert.deepEqual(unknown, [])
  // The tokenizer itself: a rule with every construct the file uses yields exactly its two metrics.
  assert.deepEqual(
    metricNames(
      'histogram_quantile(0.99, sum by (consumer, le) (rate(a_bucket{x="y"}[5m]))) > 1e3 and on (instance) b_total',
    ),
    ['a_bucket', 'b_total'],
  )
})

test('every metric the Grafana dashboard queries is one the daemon exports', () => {
  const exported = exportedNames()
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
    panels: { id: number; title: string; targets?: { expr: string }[] }[]
    templating: { list: { query: unknown }[] }
  }
  const exprs = dashboard.panels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })),
  )
  assert.ok(exprs.length >= 20, `the dashboard queries ${exprs.length} expressions`)
  const unknown = exprs.flatMap(({ panel, expr }) =>
    [...metricNames(expr).filter((n) => !exported.has(n)), ...(balanced(expr) ? [] : ['unbalanced'])].map(
      (n) => `${panel}: ${n}`,
    ),
  )
  for (const v of dashboard.templating.list) {
    const q = JSON.stringify(v.query)
    const m = /label_values\(([\w:]+),/.exec(q)
    if (m && !exported.has(m[1]!)) unknown.push(`variable: ${m[1]}`)
  }
  assert.deepEqual(unknown, [])
  assert.equal(
    new Set(dashboard.panels.map((p) => p.id)).size,
    dashboard.panels.length,
    'panel ids are unique',
  )
})

test('promtool accepts the rules and the dashboard queries, and the rule unit tests pass', (t) => {
  if (!hasPromtool) {
    t.skip('promtool is not installed (Debian: apt-get install prometheus); the checks above still ran')
    return
  }
  const check = spawnSync('promtool', ['check', 'rules', RULES.pathname], { encoding: 'utf8' })
  assert.equal(check.status, 0, check.stdout + check.stderr)
  const unit = spawnSync('promtool', ['test', 'rules', RULES_TEST.pathname], { encoding: 'utf8' })
  assert.equal(unit.status, 0, unit.stdout + unit.stderr)

  // The dashboard's queries, with Grafana's variables filled in, as recording rules promtool parses.
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
    panels: { targets?: { expr: string }[] }[]
  }
  const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((x) => x.expr))
  const dir = mkdtempSync(path.join(tmpdir(), 'ackstate-promtool-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'dashboard-rules.yml')
  const recorded = exprs.map((e, i) => ({
    record: `dashboard:query_${i}`,
    expr: e.replaceAll('$__rate_interval', '5m').replaceAll('$consumer', '.*'),
  }))
  writeFileSync(file, JSON.stringify({ groups: [{ name: 'dashboard', rules: recorded }] }))
  const queries = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' })
  assert.equal(queries.status, 0, queries.stdout + queries.stderr)
})
