import { randomBytes } from 'node:crypto'

let lastMs = 0
let seq = 0

/** Random bytes drawn in bulk: one randomBytes() call per id cost more than the rest of a publish. */
const RANDOM_PER_ID = 8
const POOL_IDS = 512
let pool = Buffer.alloc(0)
let poolAt = 0

/** Two hex digits per byte value: an id is 16 lookups, not a Buffer, its hex string and its slices. */
const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'))

/**
 * A UUIDv7 (RFC 9562): 48-bit Unix ms timestamp, then random bits. Ids made by one process are
 * strictly increasing: within one millisecond a 12-bit counter in rand_a orders them; rand_b is 62
 * random bits.
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
  if (poolAt + RANDOM_PER_ID > pool.length) {
    pool = randomBytes(RANDOM_PER_ID * POOL_IDS)
    poolAt = 0
  }
  const r = pool
  const at = poolAt
  poolAt += RANDOM_PER_ID
  const high = Math.floor(lastMs / 2 ** 32) // the timestamp's top 16 bits
  const low = lastMs >>> 0
  return (
    HEX[high >>> 8]! +
    HEX[high & 0xff]! +
    HEX[low >>> 24]! +
    HEX[(low >>> 16) & 0xff]! +
    '-' +
    HEX[(low >>> 8) & 0xff]! +
    HEX[low & 0xff]! +
    '-' +
    HEX[0x70 | (seq >>> 8)]! +
    HEX[seq & 0xff]! +
    '-' +
    HEX[0x80 | (r[at]! & 0x3f)]! +
    HEX[r[at + 1]!]! +
    '-' +
    HEX[r[at + 2]!]! +
    HEX[r[at + 3]!]! +
    HEX[r[at + 4]!]! +
    HEX[r[at + 5]!]! +
    HEX[r[at + 6]!]! +
    HEX[r[at + 7]!]!
  )
}
