/**
 * MessagePack of lists of strings, the one shape scripts take their bulk arguments in: a script
 * decodes it with Redis's built-in `cmsgpack.unpack` in C, where ioredis would have written (and
 * Redis parsed) one bulk argument per string. Strings go in as UTF-8, as ioredis writes them.
 *
 * Each string's header is sized by an upper bound of its UTF-8 length (3 bytes per UTF-16 unit), so
 * the string is written once and its exact length filled in after: MessagePack decoders accept a
 * wider header than the smallest (the format says "should", and cmsgpack reads every width).
 */
export function packLists(lists: readonly (readonly string[])[]): Buffer {
  let bound = 5
  for (const list of lists) {
    bound += 5
    for (const s of list) bound += 5 + s.length * 3
  }
  const buf = Buffer.allocUnsafe(bound)
  let at = arrayHeader(buf, 0, lists.length)
  for (const list of lists) {
    at = arrayHeader(buf, at, list.length)
    for (const s of list) at = writeString(buf, at, s)
  }
  return buf.subarray(0, at)
}

function arrayHeader(buf: Buffer, at: number, n: number): number {
  if (n < 16) {
    buf[at] = 0x90 | n
    return at + 1
  }
  if (n < 0x10000) {
    buf[at] = 0xdc
    buf.writeUInt16BE(n, at + 1)
    return at + 3
  }
  buf[at] = 0xdd
  buf.writeUInt32BE(n, at + 1)
  return at + 5
}

function writeString(buf: Buffer, at: number, s: string): number {
  const length = s.length
  if (length < 64) {
    // Short strings are copied by hand while they are ASCII (one byte per unit, length known):
    // cheaper than a call into buf.write, which the ids, field names and small payloads all paid.
    const start = at + (length < 32 ? 1 : 2)
    let i = 0
    for (; i < length; i++) {
      const unit = s.charCodeAt(i)
      if (unit > 0x7f) break
      buf[start + i] = unit
    }
    if (i === length) {
      if (length < 32) {
        buf[at] = 0xa0 | length
      } else {
        buf[at] = 0xd9
        buf[at + 1] = length
      }
      return start + length
    }
  }
  const most = length * 3
  if (most < 32) {
    const n = buf.write(s, at + 1)
    buf[at] = 0xa0 | n
    return at + 1 + n
  }
  if (most < 0x100) {
    const n = buf.write(s, at + 2)
    buf[at] = 0xd9
    buf[at + 1] = n
    return at + 2 + n
  }
  if (most < 0x10000) {
    const n = buf.write(s, at + 3)
    buf[at] = 0xda
    buf.writeUInt16BE(n, at + 1)
    return at + 3 + n
  }
  const n = buf.write(s, at + 5)
  buf[at] = 0xdb
  buf.writeUInt32BE(n, at + 1)
  return at + 5 + n
}
