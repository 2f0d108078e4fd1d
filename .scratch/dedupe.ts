import { Redis } from 'ioredis'
import { randomUUID } from 'node:crypto'
import { claimIds, settleBatch } from '../src/redis/dedupe.js'

const redis = new Redis('redis://127.0.0.1:6379')
const stream = `scratch:${randomUUID()}`
const group = 'g'
const N = 500
const CLAIM2 = `
local prefix, ttl = ARGV[1], ARGV[2]
local out = {}
local i = 0
for id, mine in string.gmatch(ARGV[3], '([^\\n]+)\\n([^\\n]+)') do
  i = i + 1
  local key = prefix .. id
  if redis.call('SET', key, mine, 'NX', 'PX', ttl) then out[i] = 1
  elseif redis.call('GET', key) == mine then redis.call('PEXPIRE', key, ttl); out[i] = 1
  else out[i] = 0 end
end
return out`
const SETTLE2 = `
local prefix, group, ttl = ARGV[1], ARGV[2], ARGV[3]
for id in string.gmatch(ARGV[4], '[^\\n]+') do redis.call('SET', prefix .. id, 'done', 'PX', ttl) end
local ids = {}
local acked = 0
for e in string.gmatch(ARGV[5], '[^\\n]+') do
  ids[#ids + 1] = e
  if #ids == 1000 then acked = acked + redis.call('XACK', KEYS[1], group, unpack(ids)); ids = {} end
end
if #ids > 0 then acked = acked + redis.call('XACK', KEYS[1], group, unpack(ids)) end
return acked`
const SETTLE3 = SETTLE2.replace("redis.call('SET', prefix .. id, 'done', 'PX', ttl)", "redis.call('PEXPIRE', prefix .. id, ttl)")
redis.defineCommand('settle3', { numberOfKeys: 1, lua: SETTLE3 })
const CLAIM4 = `
local prefix, ttl = ARGV[1], ARGV[2]
local out = {}
for i = 3, #ARGV, 2 do
  local key = prefix .. ARGV[i]
  local mine = ARGV[i + 1]
  local n = (i - 1) / 2
  if redis.call('SET', key, mine, 'NX', 'PX', ttl) then out[n] = 1
  elseif redis.call('GET', key) == mine then redis.call('PEXPIRE', key, ttl); out[n] = 1
  else out[n] = 0 end
end
return out`
const SETTLE4 = `
local prefix, group, ttl, n = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
for i = 5, n + 4 do
  local key = prefix .. ARGV[i]
  if redis.call('PEXPIRE', key, ttl) == 0 then redis.call('SET', key, 'done', 'PX', ttl) end
end
local ids = {}
local acked = 0
for i = n + 5, #ARGV do
  ids[#ids + 1] = ARGV[i]
  if #ids == 1000 or i == #ARGV then acked = acked + redis.call('XACK', KEYS[1], group, unpack(ids)); ids = {} end
end
return acked`
redis.defineCommand('claim4', { numberOfKeys: 1, lua: CLAIM4 })
redis.defineCommand('settle4', { numberOfKeys: 1, lua: SETTLE4 })
redis.defineCommand('claim2', { numberOfKeys: 1, lua: CLAIM2 })
redis.defineCommand('settle2', { numberOfKeys: 1, lua: SETTLE2 })
const prefix = `{${stream}}:dedupe:${group}:`
async function a() {
  const entries = Array.from({ length: N }, (_, i) => ({ id: randomUUID(), entryId: `${Date.now()}-${i}` }))
  const t0 = performance.now()
  await claimIds(redis, { stream, group }, entries, 90_000)
  await settleBatch(redis, { stream, group }, entries.map((e) => ({ ...e, status: 'ok', durationMs: 0 })) as never, 3_600_000)
  return performance.now() - t0
}
async function b() {
  const entries = Array.from({ length: N }, (_, i) => ({ id: randomUUID(), entryId: `${Date.now()}-${i}` }))
  const t0 = performance.now()
  await (redis as any).claim2(stream, prefix, 90_000, entries.map((e) => `${e.id}\n${e.entryId}`).join('\n'))
  await (redis as any).settle2(stream, prefix, group, 3_600_000, entries.map((e) => e.id).join('\n'), entries.map((e) => e.entryId).join('\n'))
  return performance.now() - t0
}
async function c() {
  const entries = Array.from({ length: N }, (_, i) => ({ id: randomUUID(), entryId: `${Date.now()}-${i}` }))
  const t0 = performance.now()
  await (redis as any).claim2(stream, prefix, 90_000, entries.map((e) => `${e.id}\n${e.entryId}`).join('\n'))
  await (redis as any).settle3(stream, prefix, group, 3_600_000, entries.map((e) => e.id).join('\n'), entries.map((e) => e.entryId).join('\n'))
  return performance.now() - t0
}
async function d() {
  const entries = Array.from({ length: N }, (_, i) => ({ id: randomUUID(), entryId: `${Date.now()}-${i}` }))
  const t0 = performance.now()
  await (redis as any).claim4(stream, prefix, 90_000, ...entries.flatMap((e) => [e.id, e.entryId]))
  await (redis as any).settle4(stream, prefix, group, 3_600_000, N, ...entries.map((e) => e.id), ...entries.map((e) => e.entryId))
  return performance.now() - t0
}
async function xack() {
  const entries = Array.from({ length: N }, (_, i) => ({ id: randomUUID(), entryId: `${Date.now()}-${i}` }))
  const t0 = performance.now()
  await redis.xack(stream, group, ...entries.map((e) => e.entryId))
  return performance.now() - t0
}
await redis.xgroup('CREATE', stream, group, '$', 'MKSTREAM')
const ta: number[] = [], tb: number[] = [], tc: number[] = [], td: number[] = [], tx: number[] = []
for (let i = 0; i < 60; i++) { ta.push(await a()); tb.push(await b()); tc.push(await c()); td.push(await d()); tx.push(await xack()) }
const med = (x: number[]) => x.sort((p, q) => p - q)[x.length >> 1]!.toFixed(2)
console.log('current', med(ta), 'ms/batch; packed', med(tb), 'ms/batch; packed+pexpire', med(tc), 'ms/batch; args+pexpire', med(td), 'ms/batch; bare xack', med(tx))
const keys = await redis.keys(`{${stream}}*`)
for (let i = 0; i < keys.length; i += 1000) await redis.del(...keys.slice(i, i + 1000))
await redis.del(stream)
redis.disconnect()
