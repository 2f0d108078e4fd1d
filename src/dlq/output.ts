import type { DlqEntry } from './letter.js'
import type { DlqActionResult } from './replay.js'

/** Where a `dlq` command writes; the CLI passes process.stdout and process.stderr. */
export interface DlqOutput {
  stdout: { write(text: string): unknown; isTTY?: boolean }
  stderr: { write(text: string): unknown }
}

/**
 * Prints items for a person or a script: `--json` one JSON array; else on a terminal the readable
 * `render`; else (piped) one JSON object per line.
 */
export function emit<T>(out: DlqOutput, items: T[], json: boolean, render: (items: T[]) => string): void {
  if (json) out.stdout.write(`${JSON.stringify(items)}\n`)
  else if (out.stdout.isTTY) out.stdout.write(render(items))
  else for (const item of items) out.stdout.write(`${JSON.stringify(item)}\n`)
}

/** Left-aligned columns separated by two spaces; cells are kept to one line and 60 characters. */
export function renderTable(columns: string[], rows: string[][]): string {
  const cells = [columns, ...rows].map((row) => row.map(cell))
  const widths = columns.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)))
  return (
    cells
      .map((row) =>
        row
          .map((c, i) => c.padEnd(widths[i]!))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  )
}

function cell(value: string): string {
  const flat = value.replace(/\s+/g, ' ')
  return flat.length > 60 ? `${flat.slice(0, 59)}…` : flat
}

/** `ackstate dlq list` on a terminal. */
export function letterTable(letters: DlqEntry[]): string {
  if (letters.length === 0) return 'no dead letters matched\n'
  return renderTable(
    ['STREAM', 'DLQ ENTRY', 'MESSAGE ID', 'GROUP', 'CODE', 'ATTEMPTS', 'FAILED AT'],
    letters.map((l) => [l.stream, l.dlqEntryId, l.id, l.group, l.error.code, String(l.attempts), l.failedAt]),
  )
}

/** `ackstate dlq show` on a terminal: every field of each letter, the payload last and whole. */
export function letterDetails(letters: DlqEntry[]): string {
  return letters
    .map((l) =>
      [
        `${l.stream} dead letter ${l.dlqEntryId}`,
        ...[
          ['message id', l.id],
          ['group', l.group],
          ['consumer', l.consumer],
          ['entry id', l.entryId],
          ['error', `${l.error.name} ${l.error.code}: ${l.error.message}`],
          ['attempts', String(l.attempts)],
          ['failed at', l.failedAt],
          ['headers', JSON.stringify(l.headers)],
          ['fields', JSON.stringify(l.fields)],
          ['payload', l.payload ?? '(none)'],
        ].map(([k, v]) => `  ${k!.padEnd(10)}  ${v}`),
      ].join('\n'),
    )
    .join('\n\n')
    .concat('\n')
}

/** `ackstate dlq replay` / `purge` on a terminal: one row per letter, then a count. */
export function resultTable(results: DlqActionResult[]): string {
  if (results.length === 0) return 'no dead letters matched\n'
  const table = renderTable(
    ['STREAM', 'DLQ ENTRY', 'MESSAGE ID', 'STATUS', 'DETAIL'],
    results.map((r) => [r.stream, r.dlqEntryId, r.id, r.status, r.entryId ?? r.reason ?? '']),
  )
  const counts = new Map<string, number>()
  for (const r of results) counts.set(r.status, (counts.get(r.status) ?? 0) + 1)
  return `${table}${[...counts].map(([status, n]) => `${status}: ${n}`).join(', ')}\n`
}
