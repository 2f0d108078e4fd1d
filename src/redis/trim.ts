import type { RedisClient } from './connect.js'

/**
 * Trims a stream below the oldest entry any of its groups still needs, atomically (one script, so no
 * group can move between the look and the trim): for a group with pending entries, its oldest
 * pending id; otherwise the entry after its last-delivered id. A stream without groups is left
 * alone. `~` lets Redis trim whole nodes only — it may keep a few entries more, never one more removed.
 * Returns [entries removed, the MINID used or false].
 */
const TRIM_BELOW_NEEDED = `
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
if #groups == 0 then return {0, false} end
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local bestMs, bestSeq = nil, nil
for _, flat in ipairs(groups) do
  local g = {}
  for i = 1, #flat, 2 do g[flat[i]] = flat[i + 1] end
  local ms, seq
  if tonumber(g['pending']) > 0 then
    local summary = redis.call('XPENDING', KEYS[1], g['name'])
    ms, seq = parse(summary[2])
  else
    ms, seq = parse(g['last-delivered-id'])
    seq = seq + 1
  end
  if bestMs == nil or ms < bestMs or (ms == bestMs and seq < bestSeq) then
    bestMs, bestSeq = ms, seq
  end
end
local minid = string.format('%d-%d', bestMs, bestSeq)
return {redis.call('XTRIM', KEYS[1], 'MINID', '~', minid), minid}`

export interface TrimResult {
  /** Entries removed below what the groups need. */
  trimmed: number
  /** Entries removed by the hard maximum (unconsumed ones among them), when it applied. */
  overLimit: number
  length: number
}

/** Trims `stream` safely, then applies the hard maximum length (0: none) as a last resort. */
export async function trimStream(redis: RedisClient, stream: string, maxLength: number): Promise<TrimResult> {
  const [trimmed] = (await redis.eval(TRIM_BELOW_NEEDED, 1, stream)) as [number, string | null]
  let length = await redis.xlen(stream)
  let overLimit = 0
  if (maxLength > 0 && length > maxLength) {
    overLimit = await redis.xtrim(stream, 'MAXLEN', maxLength)
    length -= overLimit
  }
  return { trimmed, overLimit, length }
}
