import { isMachineSnapshot, type AnyActorRef, type InspectionEvent } from 'xstate'
import type { Logger } from './log.js'

/** Renders a state value (`{ reading: 'fetching' }`) as a dotted path (`reading.fetching`). */
export function stateName(value: unknown): string {
  if (typeof value === 'string') return value
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value)
      .map(([k, v]) => {
        const inner = stateName(v)
        return inner ? `${k}.${inner}` : k
      })
      .join(',')
  }
  return ''
}

/**
 * Bridges XState's inspection API to the log: every state change of every machine in the system as
 * one debug line `{ actor, from, to, event }`. Returns undefined (no inspection cost) unless the log
 * level is debug or lower.
 */
export function createInspector(log: Logger): ((ev: InspectionEvent) => void) | undefined {
  if (!log.isLevelEnabled('debug')) return undefined
  const last = new Map<string, string>()
  return (ev) => {
    if (ev.type !== '@xstate.snapshot' || !isMachineSnapshot(ev.snapshot)) return
    const to = stateName(ev.snapshot.value)
    const from = last.get(ev.actorRef.sessionId)
    if (from === to) return
    last.set(ev.actorRef.sessionId, to)
    const actor = (ev.actorRef as AnyActorRef).id
    log.debug({ actor, from: from ?? null, to, event: ev.event.type }, 'state changed')
  }
}

/** One inspect callback for several observers; undefined (no inspection cost) when there are none. */
export function combineInspectors(
  observers: (((ev: InspectionEvent) => void) | undefined)[],
): ((ev: InspectionEvent) => void) | undefined {
  const live = observers.filter((o): o is (ev: InspectionEvent) => void => o !== undefined)
  if (live.length === 0) return undefined
  if (live.length === 1) return live[0]
  return (ev) => {
    for (const observe of live) observe(ev)
  }
}
