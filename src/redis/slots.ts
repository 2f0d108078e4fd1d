/**
 * Redis Cluster's key → slot mapping (CRC16-XMODEM of the key, or of its hash tag, modulo 16384), as
 * the cluster specification defines it. Pure, so the start-up check can run before anything
 * connects; test/integration/cluster.test.ts compares it with CLUSTER KEYSLOT.
 */

export const SLOTS = 16_384

/** CRC16 with polynomial 0x1021 and initial value 0 (XMODEM), the one Redis uses. */
function crc16(bytes: Uint8Array): number {
  let crc = 0
  for (const byte of bytes) {
    crc ^= byte << 8
    for (let bit = 0; bit < 8; bit++)
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
  }
  return crc
}

/**
 * The part of a key that is hashed: the text between the first `{` and the next `}` when it is not
 * empty (`{orders}:dlq` → `orders`), else the whole key.
 */
export function hashTag(key: string): string {
  const open = key.indexOf('{')
  if (open === -1) return key
  const close = key.indexOf('}', open + 1)
  if (close === -1 || close === open + 1) return key
  return key.slice(open + 1, close)
}

/** The cluster slot of a key (0–16383). */
export function keySlot(key: string): number {
  return crc16(Buffer.from(hashTag(key), 'utf8')) % SLOTS
}
