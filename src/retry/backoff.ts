import { createHash } from 'node:crypto'

export interface RetryPolicy {
  retryBaseMs: number
  retryMaxMs: number
  /** Fraction of the delay randomised either way (0.2 → ±20 %). */
  retryJitter: number
}

/**
 * Wait before re-delivering a message that failed `failures` times: min(max, base · 2^(failures-1)),
 * spread by ±jitter. The jitter is derived from the entry id and attempt, not drawn afresh, so every
 * scan of the PEL (in this process or another) agrees on when a retry is due.
 */
export function backoffMs(failures: number, policy: RetryPolicy, entryId: string): number {
  const exponent = Math.max(0, failures - 1)
  const raw = Math.min(policy.retryMaxMs, policy.retryBaseMs * 2 ** Math.min(exponent, 40))
  if (policy.retryJitter === 0) return raw
  const spread = unitHash(`${entryId}:${failures}`) * 2 - 1 // [-1, 1)
  return Math.max(0, Math.round(raw * (1 + policy.retryJitter * spread)))
}

/** The shortest wait any retry can have: entries idle for less are never due. */
export function minimumBackoffMs(policy: RetryPolicy): number {
  return Math.floor(Math.min(policy.retryBaseMs, policy.retryMaxMs) * (1 - policy.retryJitter))
}

/** A stable number in [0, 1) from a string. */
function unitHash(text: string): number {
  return createHash('sha1').update(text).digest().readUInt32BE(0) / 2 ** 32
}
