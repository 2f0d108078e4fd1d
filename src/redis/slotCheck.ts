import type { ConsumerConfig } from '../consumerConfig.js'
import { ConfigError } from '../errors.js'
import { buckets } from './dedupe.js'
import { deadLetterKey, recoveryLockKey } from './keys.js'
import { keySlot } from './slots.js'

/**
 * Every key one stream's commands touch together, by what uses them: single-key commands only need
 * their own slot, but the Lua scripts and the per-stream pipelines (dead letters, recovery) must find
 * every key in the stream's slot, or Redis Cluster refuses them with CROSSSLOT.
 */
export function keySets(stream: string, group: string): Record<string, string[]> {
  // Any rules and time: a bucket's width and number change its name, never its tag.
  const dedupe = buckets({ stream, group }, { ttlMs: 3_600_000, claimMs: 90_000 }, Date.now())
  return {
    'dead-letter stream': [stream, deadLetterKey(stream)],
    'claim and settle scripts': [stream, ...dedupe.keys, dedupe.aged],
    'recovery lock': [stream, recoveryLockKey(stream)],
  }
}

/** Each key set whose keys do not share the stream's slot, as `what: key (slot n)` lines. */
export function slotProblems(stream: string, group: string): string[] {
  const home = keySlot(stream)
  const problems: string[] = []
  for (const [what, keys] of Object.entries(keySets(stream, group))) {
    for (const key of keys) {
      const slot = keySlot(key)
      if (slot !== home) problems.push(`${what} key "${key}" hashes to slot ${slot}, the stream to ${home}`)
    }
  }
  return problems
}

/**
 * Start-up check: refuses a configuration in which any consumer's derived keys would land in another
 * slot than its stream. The consumer check already forbids braces in stream names (the only way
 * today's key scheme breaks), so this guards the key scheme itself against a future change.
 */
export function checkKeySlots(
  consumers: Pick<ConsumerConfig, 'name' | 'stream' | 'group'>[],
  file: string,
): void {
  for (const c of consumers) {
    const problems = slotProblems(c.stream, c.group)
    if (problems.length === 0) continue
    throw new ConfigError(
      'ACK_ERR_CONFIG',
      `Invalid config in ${file}: consumers "${c.name}" (stream "${c.stream}"): ${problems[0]}; ` +
        'on Redis Cluster its commands would fail with CROSSSLOT. Rename the stream so its derived keys share its slot.',
    )
  }
}
