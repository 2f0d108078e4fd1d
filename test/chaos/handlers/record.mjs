// The chaos suite's handler. Records every invocation outside Redis and PostgreSQL, in the append-only
// file named by CHAOS_LOG (one JSON line per event, one write each: O_APPEND keeps lines whole across
// processes and threads), and writes its effect through exactlyOnce() into `chaos_effect`, a table
// without a unique key so a repeated effect would show as a second row.
//
//   {"e":"start","id","inv","attempt","pid","entry","t"}   before anything else
//   {"e":"fail", …,"fault"}                                an injected fault, just before it strikes
//   {"e":"done", …,"applied"}                              after the effect committed (or was found)
//
// Fields steer it: `ms` (sleep that long first; default CHAOS_HANDLER_MS) and `fault`, on every
// attempt or, with `-once` (`throw-once`…), on the first only: `throw`, `permanent` (PermanentError:
// dead-lettered at once), `hang` (awaits forever, ignoring the abort signal), `spin` (never yields),
// `exit` (ends its worker thread), `oom` (allocates until the heap limit kills the thread).
// The start record carries the payload's UTF-8 size (`size`, -1 for none), to check what arrived.
import { randomBytes } from 'node:crypto'
import { appendFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { register } from 'tsx/esm/api'

// Worker threads may not inherit the tsx loader: register it to load the sources.
register()
const { exactlyOnce } = await import('../../../src/exactlyOnce.ts')
const { PermanentError } = await import('../../../src/errors.ts')

const LOG = process.env.CHAOS_LOG
const DEFAULT_MS = Number(process.env.CHAOS_HANDLER_MS ?? 0)

function record(event) {
  if (LOG) appendFileSync(LOG, `${JSON.stringify(event)}\n`)
}

export default async function chaosRecord(message, context) {
  const base = {
    id: message.id,
    inv: randomBytes(6).toString('hex'),
    attempt: message.attempt,
    pid: process.pid,
    entry: message.entryId,
  }
  const size = message.payload === null ? -1 : Buffer.byteLength(message.payload, 'utf8')
  record({ e: 'start', ...base, size, t: Date.now() })
  const ms = Number(message.fields.ms ?? DEFAULT_MS)
  if (ms > 0) await sleep(ms)
  const fault = message.fields.fault
  const kind = fault?.replace(/-once$/, '')
  const strikes = fault !== undefined && (fault.endsWith('-once') ? message.attempt === 1 : true)
  if (strikes) {
    record({ e: 'fail', ...base, fault, t: Date.now() })
    switch (kind) {
      case 'permanent':
        throw new PermanentError(`chaos: message ${message.id} is refused for good`)
      case 'throw':
        throw new Error(`chaos: ${fault}`)
      case 'hang':
        await new Promise(() => {})
        break
      case 'spin':
        for (;;);
      case 'exit':
        process.exit(3)
        break
      case 'oom': {
        const hoard = []
        for (;;) hoard.push(new Array(1e6).fill(Math.random()))
      }
    }
  }
  const { applied } = await exactlyOnce(message, context, async (tx) => {
    await tx.query('INSERT INTO chaos_effect (message_id, pid, attempt) VALUES ($1, $2, $3)', [
      message.id,
      process.pid,
      message.attempt,
    ])
  })
  record({ e: 'done', ...base, applied, t: Date.now() })
}
