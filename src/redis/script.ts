import { createHash } from 'node:crypto'
import type { RedisClient } from './connect.js'

/**
 * A Lua script sent by its SHA1 (EVALSHA). Sent by text with every call, a script of a kilobyte or
 * more is written to the socket and hashed by Redis each time, on both sides of every batch. The text
 * goes out only when the server answers NOSCRIPT (a new or restarted server, a failover, a Cluster
 * node that has not run it yet, SCRIPT FLUSH): that EVAL runs it and caches it there.
 */
export class Script {
  readonly sha: string

  constructor(readonly lua: string) {
    this.sha = createHash('sha1').update(lua).digest('hex')
  }

  async run(redis: RedisClient, numKeys: number, ...args: (string | number | Buffer)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, numKeys, ...args)
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err
      return redis.eval(this.lua, numKeys, ...args)
    }
  }
}
