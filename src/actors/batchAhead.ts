import type { Entry, Outcome, ProcessInput } from '../../machines/types.js'
import type { ConsumerConfig } from '../config.js'
import { entryProblem } from '../payload.js'
import { claimIds, dedupeRules, type Claim } from '../redis/dedupe.js'
import { classify } from '../redis/errors.js'
import { claimsCover, releaseOwnClaims, type FreshClaims } from '../redis/freshClaims.js'
import type { Resources } from '../resources.js'

/** A batch split by what can reach the handler: entries that cannot be messages, and the rest. */
export interface Sorted {
  /** Entries that cannot be messages (src/payload.ts), by entry id: dead, with why. */
  rejected: Map<string, Outcome>
  present: Entry[]
}

export function sortBatch(entries: Entry[], rules: ConsumerConfig): Sorted {
  const rejected = new Map<string, Outcome>()
  const present: Entry[] = []
  for (const e of entries) {
    const error = entryProblem(e, rules)
    if (error)
      rejected.set(e.entryId, {
        entryId: e.entryId,
        id: e.id,
        status: 'dead',
        durationMs: 0,
        attempt: e.attempt,
        error,
      })
    else present.push(e)
  }
  return { rejected, present }
}

/** A batch's work: the outcomes of the entries that ran, and of those the claim skipped (duplicates). */
export interface Work {
  ran: Outcome[]
  /** Acked without running, with why: the id is done, or another entry is completing it. */
  skipped: Outcome[]
}

/** How the read step starts a batch's work: stopped with it, and told once the pool run started. */
export interface StartHooks {
  signal: AbortSignal
  /** Called once the pool run started, or the work failed before it could. */
  started: () => void
}

/**
 * Claims `present` for deduplication (or awaits `claims`, sent already), then runs in the pool the
 * entries the claim lets run. Rejects when the claim fails (the broker) or the read step that
 * started it was stopped before the run started; a handler's failure is an outcome.
 */
export async function claimAndRun(
  res: Resources,
  input: ProcessInput,
  present: Entry[],
  claims: Promise<Claim[]> | null,
  hooks?: StartHooks,
): Promise<Work> {
  const rules = res.consumer(input.name)
  let running: Promise<Outcome[]>
  let skipped: Outcome[] = []
  try {
    let run = present
    if (rules.dedupeTtlMs > 0 && present.length > 0) {
      let verdicts: Claim[]
      try {
        verdicts = await (claims ?? claimIds(res.redis, input, present, dedupeRules(rules)))
      } catch (err) {
        throw classify(err, `dedupe ${input.stream} ${input.group}`)
      }
      run = present.filter((_, i) => verdicts[i] === 'run')
      skipped = present.flatMap((e, i): Outcome[] => {
        const claim = verdicts[i]!
        return claim === 'run'
          ? []
          : [{ entryId: e.entryId, id: e.id, status: 'ok', durationMs: 0, duplicate: claim }]
      })
    }
    hooks?.signal.throwIfAborted()
    running =
      run.length > 0
        ? res.pool(input.name).run({ ...input, entries: run, timeoutMs: rules.handlerTimeoutMs })
        : Promise.resolve([])
  } finally {
    hooks?.started()
  }
  return { ran: await running, skipped }
}

interface Ahead extends Sorted {
  batch: Entry[]
  /** Its work, started as it was read. Never rejects unobserved. */
  work: Promise<Work>
  /** Whether its claims came with the read (src/redis/freshClaims.ts) rather than a call of their own. */
  fresh: boolean
}

/**
 * The largest batch after which the next read has Redis claim behind it. Measured on a 2-core host:
 * the script costs Redis ~20 µs plus ~15 µs per entry (the usual claim ~8.5 µs per entry), all of it
 * before the read's answer goes out, against ~0.5 ms of write and round trip it saves.
 */
export const FRESH_BATCH_MAX = 32

/** Where a read loop stands: its last read entry, and whether that read was short and small. */
interface Mark {
  cursor: string
  small: boolean
}

/**
 * A batch's work, started by the read step the moment the batch is read instead of once the consumer
 * machine has stepped to `processing` and invoked the pool run: its dedupe claim goes out at once (or
 * came with the read), and its pool run starts as soon as the claim answers. The machine's step to
 * `processing` then overlaps the handlers instead of preceding them, and a message reaches its
 * handler that much sooner. At most one per consumer (a read loop has one batch in flight); the
 * processing step takes it for the very batch it was made for, else claims and runs afresh.
 *
 * The read step resolves only once the pool run started (or the claim failed), so a shutdown that
 * stops the read step before that leaves the batch unrun, in the PEL, as before. A claim made for a
 * batch that is never processed is the same as one made by a processing step that crashed: the same
 * entry may claim again, and any other waits until it lapses.
 */
export class BatchesAhead {
  private readonly ahead = new Map<string, Ahead>()
  private readonly marks = new Map<string, Mark>()
  private readonly failed = new Set<string>()

  /** True the first time a claim behind a read of `name` failed: it is logged once. */
  firstFailure(name: string): boolean {
    if (this.failed.has(name)) return false
    this.failed.add(name)
    return true
  }

  /**
   * The cursor a read by `name` may have Redis claim behind it (src/redis/freshClaims.ts): the last
   * entry of its previous read, if that read came back short and small. A loop that has caught up
   * waits on every read, and there the claim behind it saves a write and a round trip. Redis runs
   * that script before it answers the read, though, and it costs more per entry than the usual
   * claim, so a loop reading larger batches (a backlog, a higher rate) claims the usual way.
   */
  freshCursor(name: string): string | null {
    const mark = this.marks.get(name)
    return mark?.small ? mark.cursor : null
  }

  /** Records a read of `name` that asked for `count` entries and got `batch`. */
  read(name: string, batch: Entry[], count: number): void {
    const last = batch[batch.length - 1]
    const cursor = last?.entryId ?? this.marks.get(name)?.cursor
    if (cursor !== undefined)
      this.marks.set(name, { cursor, small: batch.length < count && batch.length <= FRESH_BATCH_MAX })
  }

  /**
   * Sorts a batch just read by `input.name`, claims it (taking the verdicts `fresh` Redis made behind
   * the read when they cover it) and starts its pool run. Resolves once the run started, or could not.
   */
  start(res: Resources, input: ProcessInput, fresh: FreshClaims | null, signal: AbortSignal): Promise<void> {
    const rules = res.consumer(input.name)
    const sorted = sortBatch(input.entries, rules)
    let claims: Promise<Claim[]> | null = null
    const covered = fresh !== null && claimsCover(fresh, sorted.present, sorted.rejected.keys())
    if (covered) {
      claims = Promise.resolve(sorted.present.map((e) => fresh.get(e.entryId)!.claim))
    } else if (rules.dedupeTtlMs > 0 && sorted.present.length > 0) {
      // An entry that cannot be a message must not hold a claim while the rest are claimed: an entry
      // of the same id would be refused as in progress, and this one is dead-lettered.
      const stray = [...sorted.rejected.values()].filter((o) => fresh?.get(o.entryId)?.claim === 'run')
      const dedupe = dedupeRules(rules)
      const claim = () => claimIds(res.redis, input, sorted.present, dedupe)
      claims = stray.length > 0 ? releaseOwnClaims(res.redis, input, dedupe, stray).then(claim) : claim()
    }
    let started!: () => void
    const running = new Promise<void>((resolve) => (started = resolve))
    const work = claimAndRun(res, input, sorted.present, claims, { signal, started })
    // A failure is the processing step's to report, when it takes the work.
    work.catch(() => {})
    this.ahead.set(input.name, { ...sorted, batch: input.entries, work, fresh: covered })
    return running
  }

  /** The work started for exactly this batch (the same array), once; else null. */
  take(name: string, batch: Entry[]): Ahead | null {
    const ahead = this.ahead.get(name)
    if (!ahead) return null
    this.ahead.delete(name)
    return ahead.batch === batch ? ahead : null
  }
}
