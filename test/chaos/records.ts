import { appendFileSync, closeSync, existsSync, fstatSync, openSync, readSync } from 'node:fs'

/** Appends one JSON line (one write: O_APPEND keeps it whole beside other writers). */
export function appendJson(file: string, value: unknown): void {
  appendFileSync(file, `${JSON.stringify(value)}\n`)
}

/**
 * Reads an append-only JSONL file incrementally: each `read()` parses the lines written since the
 * last one and returns every record so far. A torn last line (a writer killed mid-line cannot tear
 * a single write, but a reader may catch one half-flushed) waits for the next read.
 */
export class JsonlTail<T> {
  private offset = 0
  private rest = ''
  readonly records: T[] = []

  constructor(readonly file: string) {}

  read(): T[] {
    if (!existsSync(this.file)) return this.records
    const fd = openSync(this.file, 'r')
    try {
      const size = fstatSync(fd).size
      if (size <= this.offset) return this.records
      const buffer = Buffer.alloc(size - this.offset)
      readSync(fd, buffer, 0, buffer.length, this.offset)
      this.offset = size
      const text = this.rest + buffer.toString('utf8')
      const lines = text.split('\n')
      this.rest = lines.pop() ?? ''
      for (const line of lines) {
        if (!line.trim()) continue
        try {
          this.records.push(JSON.parse(line) as T)
        } catch {
          // A line no writer could have produced whole: ignore it rather than fail the count.
        }
      }
      return this.records
    } finally {
      closeSync(fd)
    }
  }
}
