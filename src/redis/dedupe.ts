import type { RedisClient } from './connect.js'
import type { Outcome } from '../../machines/types.js'
import { tag } from './keys.js'

/** `{orders}:dedupe:<group>:<id>`: shares the stream's slot, so one script can touch a whole batch. */
export const dedupeKey = (stream: string, group: string, id: string) => `${tag(stream)}:dedupe:${group}:${id}`

/** Value of a key whose message the group completed. Any other value is the entry id holding the claim. */
const DONE = 'done'

/**
 * Claims each message id for one entry before its handler runs, in one round trip for the batch:
 * SET NX with a TTL (the claim outlives the handler timeout, then lapses if the claimer died). An id
 * already `done` — or claimed by another entry carrying the same id, which will complete it — is
 * skipped; the same entry re-delivered after a failure takes its own claim back.
 */
const CLAIM = `
local out = {}
for i, key in ipairs(KEYS) do
  local mine = ARGV[i + 1]
  if redis.call('SET', key, mine, 'NX', 'PX', ARGV[1]) then
    out[i] = 1
  else
    local held = redis.call('GET', key)
    if held == mine then
      redis.call('PEXPIRE', key, ARGV[1])
      out[i] = 1
    elseif held == '${DONE}' then
      out[i] = 2
    else
      out[i] = 0
    end
  end
end
return out`

/** What the claim decided for one entry: run its handler, or skip it and why. */
export type Claim = 'run' | 'done' | 'in-progress'

const CLAIMS: Record<number, Claim> = { 1: 'run', 2: 'done', 0: 'in-progress' }

export interface DedupeTarget {
  stream: string
  group: string
}

/** KEYS of the claim script: one dedupe key per message id, all in the stream's slot. */
export const claimKeys = (target: DedupeTarget, ids: string[]) =>
  ids.map((id) => dedupeKey(target.stream, target.group, id))

/** KEYS of the settle script: the stream, then the done ids' keys, then the released ids' keys. */
export const settleKeys = (target: DedupeTarget, done: string[], released: string[]) => [
  target.stream,
  ...claimKeys(target, done),
  ...claimKeys(target, released),
]

/** Returns, per entry (same order), whether its handler should run or why not. */
export async function claimIds(
  redis: RedisClient,
  target: DedupeTarget,
  entries: { id: string; entryId: string }[],
  claimTtlMs: number,
): Promise<Claim[]> {
  if (entries.length === 0) return []
  const keys = claimKeys(
    target,
    entries.map((e) => e.id),
  )
  const replies = (await redis.eval(
    CLAIM,
    keys.length,
    ...keys,
    claimTtlMs,
    ...entries.map((e) => e.entryId),
  )) as number[]
  return replies.map((r) => CLAIMS[r]!)
}

/**
 * Settles a batch in one call: marks completed ids done (for the TTL), releases the claims of
 * dead-lettered ids (so a replay runs again), then XACKs every settled entry, duplicates included. The marks come first,
 * so an acked message is always remembered as done. All keys share the stream's slot.
 */
const SETTLE = `
local group, ttl, ndone, nrelease = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
for i = 2, ndone + 1 do redis.call('SET', KEYS[i], '${DONE}', 'PX', ttl) end
for i = ndone + 2, ndone + nrelease + 1 do redis.call('DEL', KEYS[i]) end
local acked = 0
local ids = {}
for i = 5, #ARGV do
  ids[#ids + 1] = ARGV[i]
  if #ids == 1000 or i == #ARGV then
    acked = acked + redis.call('XACK', KEYS[1], group, unpack(ids))
    ids = {}
  end
end
return acked`

/** XACKs the settled entries; with `ttlMs` > 0 also does the dedupe bookkeeping, in the same call. */
export async function settleBatch(
  redis: RedisClient,
  target: DedupeTarget,
  outcomes: Outcome[],
  ttlMs: number,
): Promise<number> {
  const entryIds = outcomes.map((o) => o.entryId)
  if (ttlMs <= 0) return redis.xack(target.stream, target.group, ...entryIds)
  // A duplicate is only acked: the key it was refused by is done already, or the claim of the entry
  // completing the id, which must stay until that entry settles (marked done, it would skip that
  // entry's own retry and ack a message that never succeeded).
  const done = outcomes.filter((o) => o.status === 'ok' && !o.duplicate).map((o) => o.id)
  const released = outcomes.filter((o) => o.status === 'dead').map((o) => o.id)
  const keys = settleKeys(target, done, released)
  return (await redis.eval(
    SETTLE,
    keys.length,
    ...keys,
    target.group,
    ttlMs,
    done.length,
    released.length,
    ...entryIds,
  )) as number
}
