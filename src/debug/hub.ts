import { isMachineSnapshot, type AnyActorRef, type AnyMachineSnapshot, type InspectionEvent } from 'xstate'
import { stateName } from '../inspect.js'
import {
  activeIds,
  batchOf,
  chartOf,
  countersOf,
  lastErrorOf,
  triggerOf,
  type ActorView,
  type TransitionView,
} from './view.js'

/**
 * Collects what the debug page shows from XState's inspection events: per machine actor (by actor id,
 * so a restarted consumer stays one entry) its latest snapshot and its last transitions. The daemon
 * steps each consumer once per batch at up to ~100k msgs/s, so observing is kept to a state-name
 * compare and an array push; the snapshot is only turned into JSON when a client reads it, and pushes
 * to live clients are coalesced to one per `pushIntervalMs`.
 */

export interface DebugHubOptions {
  /** Transitions kept per actor. */
  historySize?: number
  /** Least time between two pushes to live clients; 100 ms = at most 10 updates a second per actor. */
  pushIntervalMs?: number
}

/** A live client (an SSE stream): gets the views of the actors that changed, and `end()` on close. */
export interface DebugListener {
  push(actors: ActorView[]): void
  end(): void
}

/** The whole picture, as /debug/state serves it. */
export interface DebugState {
  at: number
  actors: ActorView[]
}

interface ActorRecord {
  id: string
  sessionId: string
  sessions: number
  snapshot: AnyMachineSnapshot
  state: string
  /** Oldest first; the readable trigger is added when viewed. */
  transitions: Omit<TransitionView, 'trigger'>[]
}

export class DebugHub {
  private readonly actors = new Map<string, ActorRecord>()
  private readonly listeners = new Set<DebugListener>()
  private readonly dirty = new Set<string>()
  private timer: NodeJS.Timeout | undefined
  private readonly historySize: number
  private readonly pushIntervalMs: number

  constructor(options: DebugHubOptions = {}) {
    this.historySize = options.historySize ?? 50
    this.pushIntervalMs = options.pushIntervalMs ?? 100
  }

  /** The inspection observer: pass it to `startRuntime(…, { inspectors: [hub.observe] })`. */
  readonly observe = (ev: InspectionEvent): void => {
    // Promise and callback actors (readBatch, processBatch…) have no states to draw.
    if (ev.type !== '@xstate.snapshot' || !isMachineSnapshot(ev.snapshot)) return
    const ref = ev.actorRef as AnyActorRef
    const snapshot = ev.snapshot
    const state = stateName(snapshot.value)
    let record = this.actors.get(ref.id)
    if (!record || record.sessionId !== ref.sessionId) {
      // A new actor, or a new one under a known id: the supervisor restarted a crashed child.
      record = {
        id: ref.id,
        sessionId: ref.sessionId,
        sessions: (record?.sessions ?? 0) + 1,
        snapshot,
        state,
        transitions: record?.transitions ?? [],
      }
      this.actors.set(ref.id, record)
      this.record(record, ev.event.type, null, state)
    } else {
      record.snapshot = snapshot
      if (state !== record.state) {
        this.record(record, ev.event.type, record.state, state)
        record.state = state
      }
    }
    // Counters change without a state change (a targetless transition), so every snapshot counts.
    if (this.listeners.size > 0) this.markDirty(record.id)
  }

  /** Everything known now. */
  state(): DebugState {
    return { at: Date.now(), actors: [...this.actors.values()].map((r) => this.view(r)) }
  }

  /** One actor's view, or undefined for an unknown id. */
  actor(id: string): ActorView | undefined {
    const record = this.actors.get(id)
    return record && this.view(record)
  }

  /** Registers a live client; returns the function that removes it. */
  subscribe(listener: DebugListener): () => void {
    this.listeners.add(listener)
    return () => {
      this.listeners.delete(listener)
      if (this.listeners.size === 0) this.cancelPush()
    }
  }

  /** Sends what is pending, then ends every live client (the HTTP server can then close). */
  close(): void {
    this.flush()
    for (const listener of [...this.listeners]) listener.end()
    this.listeners.clear()
    this.cancelPush()
  }

  private record(record: ActorRecord, event: string, from: string | null, to: string): void {
    record.transitions.push({ event, from, to, at: Date.now() })
    if (record.transitions.length > this.historySize) record.transitions.shift()
  }

  private markDirty(id: string): void {
    this.dirty.add(id)
    if (this.timer) return
    this.timer = setTimeout(() => this.flush(), this.pushIntervalMs)
    // A pending push must not keep a stopping daemon alive.
    this.timer.unref()
  }

  private flush(): void {
    this.cancelPush()
    if (this.dirty.size === 0) return
    const views = [...this.dirty].flatMap((id) => {
      const r = this.actors.get(id)
      return r ? [this.view(r)] : []
    })
    this.dirty.clear()
    for (const listener of this.listeners) listener.push(views)
  }

  private cancelPush(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
    if (this.listeners.size === 0) this.dirty.clear()
  }

  private view(r: ActorRecord): ActorView {
    const { snapshot } = r
    const machine = snapshot.machine
    return {
      id: r.id,
      machine: machine.id,
      chart: chartOf(machine.id),
      state: r.state,
      active: activeIds(snapshot),
      status: snapshot.status,
      sessions: r.sessions,
      counters: countersOf(snapshot.context),
      lastError: lastErrorOf(snapshot.context),
      transitions: r.transitions.map((t) => ({ ...t, trigger: triggerOf(machine, t.event) })),
      batch: batchOf(snapshot.context),
    }
  }
}
