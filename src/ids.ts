import { randomBytes } from 'node:crypto'

let lastMs = 0
let seq = 0

/** Random bytes drawn in bulk: one randomBytes() call per id cost more than the rest of a publish. */
const POOL_IDS = 256
let pool = Buffer.alloc(0)
let poolAt = 0

function random16(): Buffer {
  if (poolAt + 16 > pool.length) {
    pool = randomBytes(16 * POOL_IDS)
    poolAt = 0
  }
  const bytes = Buffer.from(pool.subarray(poolAt, poolAt + 16))
  poolAt += 16
  return bytes
}

/**
 * A UUIDv7 (RFC 9562): 48-bit Unix ms timestamp, then random bits. Ids made by one process are
 * strictly increasing: within one millisecond a 12-bit counter in rand_a orders them.
 */
export function uuidv7(now = Date.now()): string {
  if (now > lastMs) {
    lastMs = now
    seq = randomBytes(2).readUInt16BE(0) & 0x3ff // start low so the counter rarely overflows
  } else {
    seq++
    if (seq > 0xfff) {
      lastMs++
      seq = 0
    }
  }
  const bytes = random16()
  const ms = lastMs
  bytes[0] = Math.floor(ms / 2 ** 40) & 0xff
  bytes[1] = Math.floor(ms / 2 ** 32) & 0xff
  bytes[2] = (ms >>> 24) & 0xff
  bytes[3] = (ms >>> 16) & 0xff
  bytes[4] = (ms >>> 8) & 0xff
  bytes[5] = ms & 0xff
  bytes[6] = 0x70 | ((seq >>> 8) & 0x0f)
  bytes[7] = seq & 0xff
  bytes[8] = 0x80 | (bytes[8]! & 0x3f)
  const hex = bytes.toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}
