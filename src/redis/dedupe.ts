import type { RedisClient } from './connect.js'
import type { Outcome } from '../../machines/types.js'
import { tag } from './keys.js'
import { packLists } from './msgpack.js'
import { Script } from './script.js'

/**
 * Deduplication marks of one group, in time buckets: hashes `{orders}:dedupe:<group>:<width>:<n>`
 * whose fields are message ids, valued `d` (the group completed the id) or `<lapse ms>:<entry id>`
 * (that entry claimed it and runs its handler). A bucket spans `width` ms and expires whole; every
 * lookup reads the few live buckets with one HMGET each for the whole batch. One key per message
 * cost a Redis call each on both sides of the handler: a batch's claim and settle took ~4.5 ms of
 * Redis's CPU and ~3.5 ms of the daemon's per 500 messages, most of a deduplicated consumer's cost.
 * The tag keeps every bucket in the stream's slot, so the scripts declare all their keys on a Cluster.
 */

/** The claim on a message id outlives the handler timeout by this much before it lapses. */
const CLAIM_MARGIN_MS = 60_000

/** How far the clocks of daemons may disagree: a bucket is looked up, and kept, this much longer. */
export const CLOCK_SKEW_MS = 60_000

/** A completed id. Any other value is a claim, `<lapse ms>:<entry id>`. */
const DONE = 'd'

/** Elements per Lua unpack(): far below its stack limit whatever a batch holds. */
const CHUNK = 1000

export interface DedupeTarget {
  stream: string
  group: string
}

/** What a consumer's deduplication keeps: completed ids for `ttlMs`, claims for `claimMs`. */
export interface DedupeRules {
  ttlMs: number
  claimMs: number
}

/** The rules of a consumer: its dedupeTtlMs, and its handler timeout plus the claim margin. */
export const dedupeRules = (consumer: { dedupeTtlMs: number; handlerTimeoutMs: number }): DedupeRules => ({
  ttlMs: consumer.dedupeTtlMs,
  claimMs: consumer.handlerTimeoutMs + CLAIM_MARGIN_MS,
})

/**
 * Bucket width: half the longest a mark must be found (whole seconds). A mark made at t sits in the
 * bucket of t, which lookups read until two more buckets have begun (≥ t + 2·width) and which
 * expires after that: a done id is remembered for 1 to 1.5 times dedupeTtlMs. A changed width (a new
 * dedupeTtlMs) names new buckets; the marks made before are not consulted.
 */
export function bucketWidthMs(rules: DedupeRules): number {
  const span = Math.max(rules.ttlMs, rules.claimMs)
  return Math.max(1, Math.ceil(span / 2 / 1000)) * 1000
}

export interface Buckets {
  /** Newest first: the next bucket (a daemon whose clock runs ahead writes there), this one, two before. */
  keys: string[]
  /**
   * The bucket that just left the window: every mark in it is past dedupeTtlMs. The settle unlinks
   * it, so Redis frees it in the background instead of expiring a hash of perhaps millions of
   * fields in one step, blocking every client meanwhile (lazyfree-lazy-expire is off by default).
   */
  aged: string
  /** When this bucket (keys[1], where marks are written) expires, epoch ms. */
  expireAt: number
}

/** Bucket `n` of a group's marks, `width` ms wide: the span [n·width, (n+1)·width). */
export const bucketKey = (target: DedupeTarget, width: number, n: number) =>
  `${tag(target.stream)}:dedupe:${target.group}:${width}:${n}`

/** The buckets a claim or settle at `now` reads and writes. */
export function buckets(target: DedupeTarget, rules: DedupeRules, now: number): Buckets {
  const width = bucketWidthMs(rules)
  const n = Math.floor(now / width)
  const key = (i: number) => bucketKey(target, width, i)
  return {
    keys: [key(n + 1), key(n), key(n - 1), key(n - 2)],
    aged: key(n - 3),
    expireAt: (n + 3) * width + CLOCK_SKEW_MS,
  }
}

/**
 * The claim, as a Lua function both claim scripts define: each message id is claimed for one entry
 * before its handler runs, for the whole batch at once: `done` in any bucket → skip; claimed by this
 * same entry (re-delivered after a failure) or by a claim that lapsed (its claimer died) → claim
 * again and run; claimed by another entry, which will complete it → skip; unknown → claim and run.
 * An id twice in one batch runs once. Reads the buckets `reads`, writes the new claims to `into` in
 * one HSET. Answers one digit per entry: 1 run, 2 done, 0 in progress.
 */
export const CLAIM_FUNCTION = `
local function claim(ids, mine, now, lapse, reads, into, expireAt)
  local n = #ids
  local found = {}
  for b = 1, #reads do
    if redis.call('EXISTS', reads[b]) == 1 then
      for from = 1, n, ${CHUNK} do
        local to = math.min(from + ${CHUNK} - 1, n)
        local values = redis.call('HMGET', reads[b], unpack(ids, from, to))
        for i = from, to do
          local v = values[i - from + 1]
          if v and (found[i] == nil or v == '${DONE}') then found[i] = v end
        end
      end
    end
  end
  -- Every claim of the call lapses at the same time: its text is made once, not once per id (that
  -- number's conversion to text, per id, was a tenth to a fifth of the script's time).
  local out, write, taken, w, lapsesAt = {}, {}, {}, 0, (now + lapse) .. ':'
  for i = 1, n do
    local id, v = ids[i], found[i]
    local run
    if taken[id] then
      run = false
    elseif v == '${DONE}' then
      out[i] = 2
    elseif v == nil then
      run = true
    else
      local sep = string.find(v, ':', 1, true)
      run = string.sub(v, sep + 1) == mine[i] or tonumber(string.sub(v, 1, sep - 1)) <= now
    end
    if run == true then
      out[i] = 1
      taken[id] = true
      write[w + 1] = id
      write[w + 2] = lapsesAt .. mine[i]
      w = w + 2
    elseif run == false then
      out[i] = 0
    end
  end
  for from = 1, w, ${CHUNK} do
    redis.call('HSET', into, unpack(write, from, math.min(from + ${CHUNK} - 1, w)))
  end
  if w > 0 then redis.call('PEXPIREAT', into, expireAt) end
  return table.concat(out)
end`

/**
 * Claims a batch's ids (CLAIM_FUNCTION), new claims going to the current bucket (KEYS[2]).
 * ARGV: now, claim lapse (ms), KEYS[2]'s expiry, then [ids, entry ids] packed (src/redis/msgpack.ts).
 */
const CLAIM = new Script(`${CLAIM_FUNCTION}
local lists = cmsgpack.unpack(ARGV[4])
return claim(lists[1], lists[2], tonumber(ARGV[1]), tonumber(ARGV[2]), KEYS, KEYS[2], ARGV[3])`)

/** What the claim decided for one entry: run its handler, or skip it and why. */
export type Claim = 'run' | 'done' | 'in-progress'

/** The script answers with one digit per entry: a string is far cheaper to parse than an array. */
export const CLAIMS: Record<string, Claim> = { 1: 'run', 2: 'done', 0: 'in-progress' }

/** Returns, per entry (same order), whether its handler should run or why not. */
export async function claimIds(
  redis: RedisClient,
  target: DedupeTarget,
  entries: { id: string; entryId: string }[],
  rules: DedupeRules,
  now = Date.now(),
): Promise<Claim[]> {
  if (entries.length === 0) return []
  const { keys, expireAt } = buckets(target, rules, now)
  const packed = packLists([entries.map((e) => e.id), entries.map((e) => e.entryId)])
  const digits = (await CLAIM.run(
    redis,
    keys.length,
    ...keys,
    now,
    rules.claimMs,
    expireAt,
    packed,
  )) as string
  const claims = new Array<Claim>(entries.length)
  for (let i = 0; i < claims.length; i++) claims[i] = CLAIMS[digits[i]!]!
  return claims
}

/**
 * Settles a batch in one call: marks completed ids done in the current bucket (KEYS[3]), removes
 * the claims of dead-lettered ids from every bucket (so a replay runs again), unlinks the aged
 * bucket, then XACKs every settled entry, duplicates included. The marks come first, so an acked
 * message is always remembered as done. KEYS: the stream, the four buckets, the aged one; ARGV: the
 * group, KEYS[3]'s expiry, then [done ids, released ids, entry ids] packed.
 */
const SETTLE = new Script(`
local lists = cmsgpack.unpack(ARGV[3])
local done, released, acks = lists[1], lists[2], lists[3]
for from = 1, #done, ${CHUNK / 2} do
  local marks, m = {}, 0
  for i = from, math.min(from + ${CHUNK / 2} - 1, #done) do
    marks[m + 1] = done[i]
    marks[m + 2] = '${DONE}'
    m = m + 2
  end
  redis.call('HSET', KEYS[3], unpack(marks))
end
if #done > 0 then redis.call('PEXPIREAT', KEYS[3], ARGV[2]) end
for b = 2, 5 do
  for from = 1, #released, ${CHUNK} do
    redis.call('HDEL', KEYS[b], unpack(released, from, math.min(from + ${CHUNK} - 1, #released)))
  end
end
redis.call('UNLINK', KEYS[6])
local acked = 0
for from = 1, #acks, ${CHUNK} do
  acked = acked + redis.call('XACK', KEYS[1], ARGV[1], unpack(acks, from, math.min(from + ${CHUNK} - 1, #acks)))
end
return acked`)

/** XACKs the settled entries; with deduplication on (ttlMs > 0) also its bookkeeping, in the same call. */
export async function settleBatch(
  redis: RedisClient,
  target: DedupeTarget,
  outcomes: Outcome[],
  rules: DedupeRules,
  now = Date.now(),
): Promise<number> {
  const entryIds = outcomes.map((o) => o.entryId)
  if (rules.ttlMs <= 0) return redis.xack(target.stream, target.group, ...entryIds)
  // A duplicate is only acked: the mark it was refused by is done already, or the claim of the entry
  // completing the id, which must stay until that entry settles (marked done, it would skip that
  // entry's own retry and ack a message that never succeeded).
  const done = outcomes.filter((o) => o.status === 'ok' && !o.duplicate).map((o) => o.id)
  const released = outcomes.filter((o) => o.status === 'dead').map((o) => o.id)
  const { keys, aged, expireAt } = buckets(target, rules, now)
  return (await SETTLE.run(
    redis,
    keys.length + 2,
    target.stream,
    ...keys,
    aged,
    target.group,
    expireAt,
    packLists([done, released, entryIds]),
  )) as number
}

/** What the group's marks say of an id at `now`: done, claimed (by an entry, until when) or nothing. */
export async function readMark(
  redis: RedisClient,
  target: DedupeTarget,
  id: string,
  rules: DedupeRules,
  now = Date.now(),
): Promise<'done' | { entryId: string; lapsesAt: number } | null> {
  let claim: { entryId: string; lapsesAt: number } | null = null
  for (const key of buckets(target, rules, now).keys) {
    const value = await redis.hget(key, id)
    if (value === DONE) return 'done'
    if (value !== null && claim === null) {
      const sep = value.indexOf(':')
      claim = { entryId: value.slice(sep + 1), lapsesAt: Number(value.slice(0, sep)) }
    }
  }
  return claim
}
