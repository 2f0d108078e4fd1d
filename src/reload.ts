import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { Config, ConsumerConfig } from './config.js'

/** What a reload changes. */
export interface ReloadPlan {
  added: ConsumerConfig[]
  removed: string[]
  /** Consumers whose settings or handler module (its content) changed: drained, then started anew. */
  changed: ConsumerConfig[]
  unchanged: string[]
  /** Top-level keys that changed but need a restart to apply (connections, port, shutdown…). */
  needsRestart: string[]
}

/** Keys a running daemon can take from a new config. Everything else is read once, at start. */
const RELOADABLE = new Set(['consumers', 'file'])

/** sha1 of a handler module's file: a changed file at the same path is a changed handler. */
export function moduleHash(file: string): string {
  return createHash('sha1').update(readFileSync(file)).digest('hex')
}

/**
 * Compares the running config with a new one. `hashes` holds the content hash each running handler
 * module had when its pool was made; `hash` reads the new one.
 */
export function planReload(
  current: Config,
  next: Config,
  hashes: ReadonlyMap<string, string>,
  hash: (file: string) => string = moduleHash,
): ReloadPlan {
  const before = new Map(current.consumers.map((c) => [c.name, c]))
  const plan: ReloadPlan = { added: [], removed: [], changed: [], unchanged: [], needsRestart: [] }
  for (const c of next.consumers) {
    const old = before.get(c.name)
    if (!old) plan.added.push(c)
    else if (JSON.stringify(old) !== JSON.stringify(c) || hashes.get(c.handler) !== hash(c.handler)) {
      plan.changed.push(c)
    } else plan.unchanged.push(c.name)
  }
  const names = new Set(next.consumers.map((c) => c.name))
  plan.removed = current.consumers.filter((c) => !names.has(c.name)).map((c) => c.name)
  for (const key of Object.keys(next) as (keyof Config)[]) {
    if (RELOADABLE.has(key)) continue
    if (JSON.stringify(current[key]) !== JSON.stringify(next[key])) plan.needsRestart.push(key)
  }
  return plan
}
