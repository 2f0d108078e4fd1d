// The chaos suite's handler. Records every invocation outside Redis and PostgreSQL, in the append-only
// file named by CHAOS_LOG (one JSON line per event, one write each: O_APPEND keeps lines whole across
// processes and threads), and writes its effect through exactlyOnce() into `chaos_effect`, a table
// without a unique key so a repeated effect would show as a second row.
//
//   {"e":"start","id","inv","attempt","pid","entry","t"}   before anything else
//   {"e":"fail", …,"fault"}                                an injected fault, just before it strikes
//   {"e":"done", …,"applied"}                              after the effect committed (or was found)
//
// Fields steer it: `ms` (sleep that long first; default CHAOS_HANDLER_MS), `fault`: `throw` (every
// attempt), `permanent` (PermanentError: dead-lettered at once), and on the first attempt only
// `throw-once`, `hang-once` (awaits forever, ignoring the abort signal), `spin-once` (never yields),
// `exit-once` (ends its worker thread), `oom-once` (allocates until the heap limit kills the thread).
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
  record({ e: 'start', ...base, t: Date.now() })
  const ms = Number(message.fields.ms ?? DEFAULT_MS)
  if (ms > 0) await sleep(ms)
  const fault = message.fields.fault
  const first = message.attempt === 1
  if (fault === 'throw' || (fault && first && fault.endsWith('-once'))) {
    record({ e: 'fail', ...base, fault, t: Date.now() })
  }
  if (fault === 'permanent') {
    record({ e: 'fail', ...base, fault, t: Date.now() })
    throw new PermanentError(`chaos: message ${message.id} is refused for good`)
  }
  if (fault === 'throw' || (fault === 'throw-once' && first)) throw new Error(`chaos: ${fault}`)
  if (fault === 'hang-once' && first) await new Promise(() => {})
  if (fault === 'spin-once' && first) for (;;);
  if (fault === 'exit-once' && first) process.exit(3)
  if (fault === 'oom-once' && first) {
    const hoard = []
    for (;;) hoard.push(new Array(1e6).fill(Math.random()))
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
