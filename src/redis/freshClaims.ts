import type { Entry } from '../../machines/types.js'
import type { ConsumerConfig } from '../config.js'
import type { Redis, RedisClient } from './connect.js'
import {
  CLAIM_FUNCTION,
  CLAIMS,
  CLOCK_SKEW_MS,
  bucketKey,
  bucketWidthMs,
  dedupeRules,
  type Claim,
  type DedupeRules,
  type DedupeTarget,
} from './dedupe.js'
import { Script } from './script.js'

/**
 * The dedupe claim of a batch, made by Redis right behind the blocking read that delivers it: the
 * read loop writes `XREADGROUP … BLOCK` and this script in one go, Redis runs the script as soon as
 * the read returns, and both replies come back together. The claim then costs the daemon neither a
 * write of its own nor a round trip between the read and the pool run, the two largest steps of a
 * message's way from publish to handler once the consumer has caught up.
 *
 * The script cannot see what the read returned, so it finds the entries itself: this consumer's
 * pending entries after `cursor` (the last entry of the loop's previous read) that were delivered
 * once, less than FRESH_MS ago, fetched with one XRANGE (a read delivers consecutive entries).
 * Entries handed over from a dead daemon (idle for a year) and retries (delivered more than once)
 * are left out. It claims only entries that can be messages by the rules of src/payload.ts as far
 * as Lua can tell (a payload within maxPayloadBytes; for a `json` consumer, one that parses), so a
 * claim is not left on an id by an entry that will be dead-lettered.
 *
 * It takes its clock from Redis (TIME), since the read before it may have blocked for seconds, and
 * picks the bucket to write by that clock among those the caller named. The daemon uses a verdict
 * only for an entry of its batch it covers with the same message id; any other entry is claimed the
 * usual way (src/redis/dedupe.ts), as is the whole batch when the script could not answer.
 *
 * KEYS: the stream, then the buckets n+3 … n−3 around the caller's clock (bucket n). ARGV: group,
 * consumer, cursor, count, claim lapse (ms), bucket width (ms), n, clock skew (ms), maxPayloadBytes,
 * 1 for a `json` consumer. Answers false when Redis's clock is not within n−1 … n+2, else the claim
 * digits (CLAIM_FUNCTION) followed by each claimed entry id and its message id.
 */
const FRESH_MS = 1_000

const CLAIM_FRESH = new Script(`${CLAIM_FUNCTION}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local width, n = tonumber(ARGV[6]), tonumber(ARGV[7])
local m = math.floor(now / width)
if m < n - 1 or m > n + 2 then return false end
local at = 2 + (n + 3 - m)
local maxBytes, json = tonumber(ARGV[9]), ARGV[10] == '1'
local ids, mine = {}, {}
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], '(' .. ARGV[3], '+', ARGV[4], ARGV[2])
local fresh, first, last = {}, nil, nil
for _, p in ipairs(pending) do
  if p[4] == 1 and p[3] < ${FRESH_MS} then
    fresh[p[1]] = true
    first = first or p[1]
    last = p[1]
  end
end
-- One range for all of them: a read delivers a run of consecutive entries.
local entries = first and redis.call('XRANGE', KEYS[1], first, last, 'COUNT', 2 * tonumber(ARGV[4])) or {}
for _, e in ipairs(entries) do
  if fresh[e[1]] then
    local f, id, payload = e[2], e[1], nil
    for i = 1, #f - 1, 2 do
      if f[i] == 'id' then id = f[i + 1] elseif f[i] == 'payload' then payload = f[i + 1] end
    end
    local ok
    if payload == nil then ok = not json
    elseif #payload > maxBytes then ok = false
    elseif json then ok = pcall(cjson.decode, payload)
    else ok = true end
    if ok then
      ids[#ids + 1] = id
      mine[#mine + 1] = e[1]
    end
  end
end
local out = {claim(ids, mine, now, tonumber(ARGV[5]), {KEYS[at - 1], KEYS[at], KEYS[at + 1], KEYS[at + 2]},
  KEYS[at], (m + 3) * width + tonumber(ARGV[8]))}
for i = 1, #ids do
  out[#out + 1] = mine[i]
  out[#out + 1] = ids[i]
end
return out`)

/**
 * Removes the claims `entries` hold on their ids (a claim by another entry, or a done mark, stays).
 * KEYS: buckets; ARGV: id, entry id pairs.
 */
const RELEASE_OWN = new Script(`
for b = 1, #KEYS do
  for i = 1, #ARGV - 1, 2 do
    local v = redis.call('HGET', KEYS[b], ARGV[i])
    local owner = ':' .. ARGV[i + 1]
    if v and string.sub(v, -#owner) == owner then redis.call('HDEL', KEYS[b], ARGV[i]) end
  end
end
return 0`)

/** The buckets a fresh claim made around `now` may have written: n+3 … n−3. */
function bucketKeys(target: DedupeTarget, width: number, n: number): string[] {
  const keys: string[] = []
  for (let i = n + 3; i >= n - 3; i--) keys.push(bucketKey(target, width, i))
  return keys
}

/**
 * Takes back the claims the script made for entries the daemon then found cannot be messages, before
 * the rest of their batch is claimed again: until their settle removes them, those claims would
 * refuse an entry of the same id as in progress.
 */
export async function releaseOwnClaims(
  redis: RedisClient,
  target: DedupeTarget,
  rules: DedupeRules,
  entries: { id: string; entryId: string }[],
  now = Date.now(),
): Promise<void> {
  const width = bucketWidthMs(rules)
  const keys = bucketKeys(target, width, Math.floor(now / width))
  await RELEASE_OWN.run(redis, keys.length, ...keys, ...entries.flatMap((e) => [e.id, e.entryId]))
}

/** The SHA1 the claim behind a read goes by. */
export const FRESH_CLAIM_SHA = CLAIM_FRESH.sha

/** What the script decided, by entry id: the message id it claimed and the verdict. */
export type FreshClaims = Map<string, { id: string; claim: Claim }>

/** The script's arguments after its SHA1: key count, keys, then ARGV. */
export function freshClaimArgs(
  target: DedupeTarget & { consumer: string },
  rules: ConsumerConfig,
  cursor: string,
  count: number,
  now = Date.now(),
): (string | number)[] {
  const dedupe = dedupeRules(rules)
  const width = bucketWidthMs(dedupe)
  const n = Math.floor(now / width)
  const keys = [target.stream, ...bucketKeys(target, width, n)]
  return [
    keys.length,
    ...keys,
    target.group,
    target.consumer,
    cursor,
    count,
    dedupe.claimMs,
    width,
    n,
    CLOCK_SKEW_MS,
    rules.maxPayloadBytes,
    rules.payloadFormat === 'json' ? 1 : 0,
  ]
}

/** The script's reply as a map; null when it could not answer (Redis's clock out of range). */
function parseFreshClaims(reply: unknown): FreshClaims | null {
  if (!Array.isArray(reply)) return null
  const [digits, ...pairs] = reply as string[]
  const claims: FreshClaims = new Map()
  for (let i = 0; i < pairs.length / 2; i++)
    claims.set(pairs[2 * i]!, { id: pairs[2 * i + 1]!, claim: CLAIMS[digits![i]!]! })
  return claims
}

/**
 * One XREADGROUP (its arguments as readBatch builds them) with the fresh claim behind it, written
 * together on the reader connection. Resolves with the read's reply and the claims, or null claims
 * when Redis's clock was out of range or the script failed (the error, for the caller to log): the
 * batch is then claimed the usual way. A failed read rejects.
 */
export async function readWithClaims(
  reader: RedisClient,
  readArgs: (string | number)[],
  claimArgs: (string | number)[],
): Promise<{ reply: unknown; claims: FreshClaims | null; error: Error | null }> {
  // Written back to back, the read first: Redis runs the script when the read returns. Script.run
  // writes its EVALSHA before its first await, so in this order; after NOSCRIPT (a restart, a
  // failover, SCRIPT FLUSH) it sends the text once, to the stream's node, which then caches it. Run a
  // moment after the read, that finds the same entries. (A Cluster routes both to the stream's node:
  // every key shares its slot. TypeScript cannot pick an overload on the union's variadic form.)
  const [numKeys, ...keysAndArgs] = claimArgs
  const reading = (reader as Redis).call('XREADGROUP', ...readArgs)
  const claiming = CLAIM_FRESH.run(reader, numKeys as number, ...keysAndArgs).then(
    (claimReply: unknown) => ({ claimReply, claimError: null }),
    (claimError: Error) => ({ claimReply: null, claimError }),
  )
  const reply = await reading
  const { claimReply, claimError } = await claiming
  if (claimError) return { reply, claims: null, error: claimError }
  return { reply, claims: parseFreshClaims(claimReply), error: null }
}

/**
 * Whether the claims cover a batch: every entry the sorting let through has a verdict for its own
 * message id, and no entry it rejected was claimed. Otherwise the batch is claimed the usual way.
 */
export function claimsCover(claims: FreshClaims, present: Entry[], rejected: Iterable<string>): boolean {
  for (const e of present) if (claims.get(e.entryId)?.id !== e.id) return false
  for (const entryId of rejected) if (claims.get(entryId)?.claim === 'run') return false
  return true
}
