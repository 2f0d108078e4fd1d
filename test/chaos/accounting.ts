/**
 * The counting of a chaos run, as one pure function over what was recorded outside the system under
 * test: every publish outcome (the publisher's JSONL), every handler invocation (the handler's JSONL),
 * the dead letters, the effect rows, the faults and the final probe. No I/O here, so the arithmetic
 * that decides "nothing lost" has a unit test of its own (accounting.test.ts).
 */

/** `ok`: the publish resolved. `failed`: refused with nothing sent. `unknown`: it may still arrive. */
export type PublishOutcome = 'ok' | 'failed' | 'unknown'

export interface PublishRecord {
  id: string
  /** `api`: createPublisher() with the PostgreSQL backup; `xadd`: a raw XADD by another client. */
  via: 'api' | 'xadd'
  outcome: PublishOutcome
  /** The error code of a refusal (ACK_ERR_…, or the Redis error's first word for a raw XADD). */
  code?: string
  /** The start of the refusal's message. */
  error?: string
  /** When the publish was started and when it settled (ms since the epoch). */
  t0: number
  t: number
  /** Whether a backup row was written first (api with a store). */
  backup: boolean
  /** The message the probe published after healing. */
  probe?: boolean
}

export interface InvocationRecord {
  e: 'start' | 'done' | 'fail'
  id: string
  /** Unique per invocation: pairs a start with its done. */
  inv: string
  attempt: number
  pid: number
  t: number
  /** done only: whether exactlyOnce() applied the effect (false: it found the message processed). */
  applied?: boolean
  entry?: string
  /** start only: the payload's UTF-8 size as the handler got it (-1: no payload). */
  size?: number
  /** fail only: the injected fault. */
  fault?: string
}

export interface FaultRecord {
  kind: string
  /** Injected, and healed (the same instant for a fault the system heals itself, like kill -9). */
  at: number
  healedAt: number
  note?: string
}

export interface AccountingInput {
  publishes: PublishRecord[]
  invocations: InvocationRecord[]
  /** Message id → when it was dead-lettered (the DLQ stream and the dead_letter table). */
  deadLettered: Map<string, number>
  /** Effect rows written through exactlyOnce(), counted per message id. */
  effects: Map<string, number>
  faults: FaultRecord[]
  probe: { ok: boolean; ms: number | null } | null
}

export interface Accounting {
  published: { attempted: number; ok: number; failed: number; unknown: number; api: number; xadd: number }
  /** Distinct ids whose handler completed at least once. */
  completed: number
  deadLettered: number
  /** Published ok with the backup, never completed nor dead-lettered. Must be empty. */
  lost: string[]
  /** Published ok by a raw XADD (no backup), never completed nor dead-lettered. */
  lostUnbacked: string[]
  invocations: number
  /**
   * Invocations of an id other than its first completing one that started after that completion, or
   * that completed too (a concurrent run). Retries of failed attempts do not count.
   */
  duplicateInvocations: number
  /** Extra effect rows: sum over ids of (rows − 1). Must be 0. */
  duplicateEffects: number
  /** Completed or dead-lettered ids that nobody published. Must be empty. */
  unexpected: string[]
  /** Publishes that failed or were unknown and were completed anyway (the republisher, a lost reply). */
  failedThenDelivered: number
  /** Ids both completed and dead-lettered. */
  completedAndDead: number
  /** Per fault: ms from its heal until everything outstanding at the fault was settled. */
  recoveryMs: (number | null)[]
  stillConsuming: boolean
  probeMs: number | null
}

export function account(input: AccountingInput): Accounting {
  const publishedIds = new Map<string, PublishRecord[]>()
  for (const p of input.publishes) {
    const list = publishedIds.get(p.id) ?? []
    list.push(p)
    publishedIds.set(p.id, list)
  }

  interface Invocation {
    id: string
    start: number | null
    done: number | null
  }
  const invocations = new Map<string, Invocation>()
  const firstDone = new Map<string, { t: number; inv: string }>()
  for (const r of input.invocations) {
    const inv = invocations.get(r.inv) ?? { id: r.id, start: null, done: null }
    if (r.e === 'start') inv.start = r.t
    if (r.e === 'done') {
      inv.done = r.t
      const first = firstDone.get(r.id)
      if (!first || r.t < first.t) firstDone.set(r.id, { t: r.t, inv: r.inv })
    }
    invocations.set(r.inv, inv)
  }

  let duplicateInvocations = 0
  for (const [token, inv] of invocations) {
    const first = firstDone.get(inv.id)
    if (!first || first.inv === token) continue
    const startedAfter = inv.start !== null && inv.start >= first.t
    if (startedAfter || inv.done !== null) duplicateInvocations++
  }

  /** When an id was settled: its first completion or its dead-lettering, whichever came first. */
  const settledAt = (id: string): number | null => {
    const done = firstDone.get(id)?.t
    const dead = input.deadLettered.get(id)
    if (done === undefined) return dead ?? null
    return dead === undefined ? done : Math.min(done, dead)
  }

  const lost: string[] = []
  const lostUnbacked: string[] = []
  let failedThenDelivered = 0
  const count = { attempted: 0, ok: 0, failed: 0, unknown: 0, api: 0, xadd: 0 }
  for (const [id, records] of publishedIds) {
    count.attempted++
    const ok = records.find((r) => r.outcome === 'ok')
    const outcome: PublishOutcome = ok
      ? 'ok'
      : records.some((r) => r.outcome === 'unknown')
        ? 'unknown'
        : 'failed'
    count[outcome]++
    count[(ok ?? records[0]!).via]++
    const settled = settledAt(id) !== null
    if (ok && !settled) (records.some((r) => r.outcome === 'ok' && r.backup) ? lost : lostUnbacked).push(id)
    if (!ok && settled) failedThenDelivered++
  }

  const unexpected = new Set<string>()
  for (const id of [...firstDone.keys(), ...input.deadLettered.keys()]) {
    if (!publishedIds.has(id)) unexpected.add(id)
  }

  let duplicateEffects = 0
  for (const rows of input.effects.values()) duplicateEffects += Math.max(0, rows - 1)

  let completedAndDead = 0
  for (const id of firstDone.keys()) if (input.deadLettered.has(id)) completedAndDead++

  const recoveryMs = input.faults.map((f) => recovery(f, input.publishes, settledAt, firstDone))

  return {
    published: count,
    completed: firstDone.size,
    deadLettered: input.deadLettered.size,
    lost: lost.sort(),
    lostUnbacked: lostUnbacked.sort(),
    invocations: invocations.size,
    duplicateInvocations,
    duplicateEffects,
    unexpected: [...unexpected].sort(),
    failedThenDelivered,
    completedAndDead,
    recoveryMs,
    stillConsuming: input.probe?.ok ?? false,
    probeMs: input.probe?.ms ?? null,
  }
}

/**
 * Time to recover from one fault: from its heal until every message that was outstanding — its
 * publish started before the heal and it was not settled before the fault — is settled. With none
 * outstanding, until the first completion after the heal. Null when nothing settled after it.
 */
function recovery(
  fault: FaultRecord,
  publishes: PublishRecord[],
  settledAt: (id: string) => number | null,
  firstDone: Map<string, { t: number }>,
): number | null {
  let latest: number | null = null
  const seen = new Set<string>()
  for (const p of publishes) {
    if (p.t0 >= fault.healedAt || seen.has(p.id)) continue
    seen.add(p.id)
    const settled = settledAt(p.id)
    if (settled === null || settled < fault.at) continue
    latest = Math.max(latest ?? settled, settled)
  }
  if (latest !== null) return Math.max(0, latest - fault.healedAt)
  let first: number | null = null
  for (const { t } of firstDone.values()) if (t >= fault.healedAt) first = Math.min(first ?? t, t)
  return first === null ? null : first - fault.healedAt
}

/** The p-th percentile (0–100) of the numbers, nearest rank; null for none. */
export function percentile(values: (number | null)[], p: number): number | null {
  const sorted = values.filter((v): v is number => v !== null).sort((a, b) => a - b)
  if (sorted.length === 0) return null
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)))
  return sorted[rank - 1]!
}
