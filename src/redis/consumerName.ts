import { randomBytes } from 'node:crypto'
import os from 'node:os'

/** Random per process start: a restarted dyno with the same host and pid still gets a new name. */
const bootId = randomBytes(4).toString('hex')

/**
 * The Redis consumer name of this process: host, pid and boot id (plus Heroku's DYNO when set), so
 * an old and a new dyno never share a PEL.
 */
export function consumerName(env: NodeJS.ProcessEnv = process.env): string {
  const host = (env.DYNO ?? os.hostname()).replace(/[^A-Za-z0-9_.-]/g, '_')
  return `${host}-${process.pid}-${bootId}`
}
