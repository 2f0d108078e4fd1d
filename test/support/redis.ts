import { randomUUID } from 'node:crypto'
import type { TestContext } from 'node:test'
import { Redis } from 'ioredis'

export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

/** Deletes every key under `prefix` and its hash-tagged twins (`{prefix:…}`). */
async function sweep(redis: Redis, prefix: string): Promise<void> {
  const keys = [...(await redis.keys(`${prefix}:*`)), ...(await redis.keys(`{${prefix}:*`))]
  if (keys.length > 0) await redis.del(...keys)
}

/** The prefixes handed out in this test process, swept once more when it is about to exit. */
const prefixes: string[] = []
let finalSweep: Promise<void> | undefined

// A test's after-hooks run in the order they were added, so a daemon or runtime stopped by a hook
// added after testRedis() still runs after the first sweep, and may write again (recreate its group,
// claim a batch). The last sweep, once every test of the file is done, takes what they left.
process.on('beforeExit', () => {
  if (finalSweep || prefixes.length === 0) return
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 2 })
  finalSweep = Promise.all(prefixes.map((p) => sweep(redis, p)))
    .then(
      () => undefined,
      (err: unknown) => console.error('the last sweep of test keys failed:', err),
    )
    .finally(() => redis.disconnect())
})

/**
 * A connection and a key prefix unique to this test; every key under the prefix (and its hash-tagged
 * twins) is deleted and the connection closed when the test ends, and once more when the test
 * process is about to exit.
 */
export function testRedis(t: TestContext): { redis: Redis; prefix: string; key: (name: string) => string } {
  const prefix = `test:${randomUUID()}`
  prefixes.push(prefix)
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 2 })
  t.after(async () => {
    await sweep(redis, prefix)
    await redis.quit()
  })
  return { redis, prefix, key: (name) => `${prefix}:${name}` }
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function eventually<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  { timeoutMs = 10_000, what = 'condition' }: { timeoutMs?: number; what?: string } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined && value !== false) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

/** Number of entries in the group's PEL. */
export async function pendingCount(redis: Redis, stream: string, group: string): Promise<number> {
  const summary = (await redis.xpending(stream, group)) as [number, ...unknown[]]
  return Number(summary[0])
}

/** The entries of a stream as [entryId, fields object]. */
export async function readAll(redis: Redis, stream: string): Promise<[string, Record<string, string>][]> {
  const entries = (await redis.xrange(stream, '-', '+')) as [string, string[]][]
  return entries.map(([id, flat]) => {
    const fields: Record<string, string> = {}
    for (let i = 0; i < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!
    return [id, fields]
  })
}

/** Waits until `stream` holds at least `count` entries; returns their fields. */
export async function waitForEntries(
  redis: Redis,
  stream: string,
  count = 1,
  timeoutMs = 10_000,
): Promise<Record<string, string>[]> {
  return eventually(
    async () => {
      const rows = await readAll(redis, stream)
      return rows.length >= count && rows.map(([, fields]) => fields)
    },
    { timeoutMs, what: `${count} entries in ${stream}` },
  )
}

/** XINFO GROUPS of one group as an object (`pending`, `entries-read`, `lag`, `last-delivered-id`…). */
export async function groupInfo(
  redis: Redis,
  stream: string,
  group: string,
): Promise<Record<string, unknown>> {
  const groups = (await redis.xinfo('GROUPS', stream)) as unknown[][]
  for (const flat of groups) {
    const info = Object.fromEntries(
      Array.from({ length: flat.length / 2 }, (_, i): [string, unknown] => [
        String(flat[2 * i]),
        flat[2 * i + 1],
      ]),
    )
    if (info.name === group) return info
  }
  throw new Error(`group ${group} not found on ${stream}`)
}
