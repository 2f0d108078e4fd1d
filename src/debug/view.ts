import { getStateNodes, type AnyMachineSnapshot, type AnyStateMachine, type StateValue } from 'xstate'
import { buildGraph } from '../visualize/graph.js'
import { triggerLabel } from '../visualize/labels.js'
import { MACHINES } from '../visualize/machines.js'

/**
 * What the debug page shows of one actor, projected from its latest machine snapshot. Only called
 * when a client asks (a page is open, /debug/state is read), never per inspection event: the hub
 * keeps the snapshot object and this turns it into plain JSON.
 */

/** One state change of an actor. */
export interface TransitionView {
  /** The event that caused it, as XState names it (`xstate.done.actor.0.consumer.processing`). */
  event: string
  /** The same as the charts label its arrow (`done processBatch`), or the event when none matches. */
  trigger: string
  /** Dotted state before (`reading.fetching`); null when the actor (re)started. */
  from: string | null
  to: string
  /** Epoch ms. */
  at: number
}

/** One entry of a consumer's batch in flight. Never the payload itself, only its first characters. */
export interface BatchEntryView {
  entryId: string
  id: string
  attempt: number
  /** `in flight` until the handler pool answered, then the outcome waiting to be settled. */
  status: 'in flight' | 'ok' | 'retry' | 'dead'
  preview: string | null
}

export interface BatchView {
  size: number
  /** The first MAX_BATCH_ENTRIES entries; a batch may hold up to 10,000. */
  entries: BatchEntryView[]
}

export interface ActorView {
  /** Actor id, also its system id: `supervisor`, `consumer-orders`, `reclaimer`. */
  id: string
  /** Machine id: `consumer`. */
  machine: string
  /** URL of the machine's chart, or null for a machine `ackstate visualize` does not know. */
  chart: string | null
  /** Dotted state value, `reading.fetching`. */
  state: string
  /** Ids of the active state nodes, root to leaves: the chart's node and cluster titles. */
  active: string[]
  status: AnyMachineSnapshot['status']
  /** Actors that ran under this id: more than 1 after a supervisor restart. */
  sessions: number
  counters: Record<string, number>
  lastError: string | null
  /** Oldest first. */
  transitions: TransitionView[]
  /** Consumers only. */
  batch: BatchView | null
}

export const MAX_BATCH_ENTRIES = 100
export const PREVIEW_CHARS = 80

/** Machine id → chart URL, for the machines the visualize registry draws. */
const CHARTS = new Map(Object.entries(MACHINES).map(([name, m]) => [m.id, `/debug/charts/${name}.svg`]))

/** Per machine id: XState event descriptor → arrow label. Built once per machine, from its graph. */
const triggers = new Map<string, Map<string, string>>()

export function triggerOf(machine: AnyStateMachine, event: string): string {
  let byEvent = triggers.get(machine.id)
  if (!byEvent) {
    byEvent = new Map()
    const graph = buildGraph(machine)
    // An invoke's failure caught by a parent's `xstate.error.actor.*` has no edge of its own.
    for (const node of graph.nodes) {
      for (const inv of node.invokes) {
        byEvent.set(`xstate.done.actor.${inv.id}`, `done ${inv.src}`)
        byEvent.set(`xstate.error.actor.${inv.id}`, `error ${inv.src}`)
      }
    }
    for (const edge of graph.edges) if (edge.event) byEvent.set(edge.event, triggerLabel(edge))
    triggers.set(machine.id, byEvent)
  }
  return byEvent.get(event) ?? event
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null

/**
 * The numbers worth watching: every numeric field of `context.stats` (consumer, reclaimer), and the
 * supervisor's children alive and restarts per child.
 */
export function countersOf(context: unknown): Record<string, number> {
  const out: Record<string, number> = {}
  if (!isRecord(context)) return out
  if (isRecord(context.stats)) {
    for (const [k, v] of Object.entries(context.stats)) if (typeof v === 'number') out[k] = v
  }
  if (Array.isArray(context.running)) out.running = context.running.length
  if (isRecord(context.restarts)) {
    for (const [k, v] of Object.entries(context.restarts)) if (typeof v === 'number') out[`restarts ${k}`] = v
  }
  return out
}

/** `context.lastError` as one line: the reclaimer keeps a string, the consumer `{ code, message }`. */
export function lastErrorOf(context: unknown): string | null {
  if (!isRecord(context)) return null
  const e = context.lastError
  if (typeof e === 'string') return e
  if (isRecord(e) && typeof e.message === 'string')
    return typeof e.code === 'string' ? `${e.code}: ${e.message}` : e.message
  return null
}

/** A consumer's `batch` (and its `outcomes` once processed) without payload bodies. */
export function batchOf(context: unknown): BatchView | null {
  if (!isRecord(context) || !Array.isArray(context.batch)) return null
  const batch = context.batch as unknown[]
  const outcomes = new Map<string, BatchEntryView['status']>()
  if (Array.isArray(context.outcomes)) {
    for (const o of context.outcomes as unknown[]) {
      if (isRecord(o) && typeof o.entryId === 'string')
        outcomes.set(o.entryId, o.status as BatchEntryView['status'])
    }
  }
  const entries = batch
    .slice(0, MAX_BATCH_ENTRIES)
    .filter(isRecord)
    .map((e) => {
      const entryId = String(e.entryId)
      return {
        entryId,
        id: String(e.id),
        attempt: typeof e.attempt === 'number' ? e.attempt : 1,
        status: outcomes.get(entryId) ?? 'in flight',
        preview: typeof e.payload === 'string' ? e.payload.slice(0, PREVIEW_CHARS) : null,
      }
    })
  return { size: batch.length, entries }
}

/** Active state node ids, deduplicated (getStateNodes repeats ancestors), root first. */
export function activeIds(snapshot: AnyMachineSnapshot): string[] {
  return [...new Set(getStateNodes(snapshot.machine.root, snapshot.value as StateValue).map((n) => n.id))]
}

export function chartOf(machineId: string): string | null {
  return CHARTS.get(machineId) ?? null
}
