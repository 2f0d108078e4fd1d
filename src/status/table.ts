import type { StatusReport } from './report.js'

/** 850ms, 4.2s, 3m07s, 5h02m, 2d03h: short enough for a column, exact enough to act on. */
export function formatAge(ms: number | null): string {
  if (ms === null) return '-'
  if (ms < 1_000) return `${Math.round(ms)}ms`
  const s = ms / 1_000
  if (s < 60) return `${s.toFixed(1)}s`
  const pad = (n: number) => String(Math.floor(n)).padStart(2, '0')
  if (s < 3_600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`
  if (s < 86_400) return `${Math.floor(s / 3_600)}h${pad((s % 3_600) / 60)}m`
  return `${Math.floor(s / 86_400)}d${pad((s % 86_400) / 3_600)}h`
}

/** Left-aligned text columns, right-aligned numbers, two spaces apart. */
export function columns(header: string[], rows: string[][], numeric: boolean[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  return [line(header), ...rows.map(line)].join('\n')
}

/**
 * The report for a person: one row per configured consumer, then the Redis consumers of each group
 * (one per daemon process that read from it; a large idle time with entries pending is a dead daemon
 * whose entries the reclaimer hands over).
 */
export function renderTable(report: StatusReport): string {
  const main = columns(
    ['CONSUMER', 'STREAM', 'GROUP', 'LENGTH', 'LAG', 'PENDING', 'OLDEST PENDING', 'DLQ', 'BACKUP PENDING'],
    report.consumers.map((c) => [
      c.name,
      c.stream,
      c.groupExists ? c.group : `${c.group} (missing)`,
      String(c.length),
      c.lag === null ? '-' : String(c.lag),
      String(c.pending),
      formatAge(c.oldestPendingAgeMs),
      String(c.dlqLength),
      c.backupPending === null ? '-' : String(c.backupPending),
    ]),
    [false, false, false, true, true, true, true, true, true],
  )
  const members = report.consumers.flatMap((c) =>
    c.groupConsumers.map((m) => [
      c.name,
      m.name,
      String(m.pending),
      formatAge(m.idleMs),
      m.alive ? 'alive' : 'gone',
      m.actors[`consumer-${c.name}`] ?? '-',
    ]),
  )
  const parts = [main]
  if (members.length > 0) {
    parts.push(
      columns(['CONSUMER', 'REDIS CONSUMER', 'PENDING', 'IDLE', 'DAEMON', 'ACTOR STATE'], members, [
        false,
        false,
        true,
        true,
        false,
        false,
      ]),
    )
  }
  if (!report.store.enabled) parts.push('backup: store disabled (store.enabled=false)')
  else if (report.store.error) parts.push(`backup: not shown: ${report.store.error}`)
  return `${parts.join('\n\n')}\n`
}
