import assert from 'node:assert/strict'
import { test } from 'node:test'
import { packLists } from '../../src/redis/msgpack.js'

/** A reader of the MessagePack subset packLists writes (array and str of every width), for checking. */
function unpack(buf: Buffer): unknown {
  let at = 0
  const read = (): unknown => {
    const b = buf[at++]!
    const array = (n: number) => Array.from({ length: n }, read)
    const str = (n: number) => {
      const s = buf.toString('utf8', at, at + n)
      at += n
      return s
    }
    if ((b & 0xf0) === 0x90) return array(b & 0x0f)
    if ((b & 0xe0) === 0xa0) return str(b & 0x1f)
    const width = { 0xd9: 1, 0xda: 2, 0xdb: 4, 0xdc: 2, 0xdd: 4 }[b]
    if (!width) throw new Error(`unexpected MessagePack byte 0x${b.toString(16)} at ${at - 1}`)
    const n = buf.readUIntBE(at, width)
    at += width
    return b >= 0xdc ? array(n) : str(n)
  }
  const value = read()
  assert.equal(at, buf.length, 'nothing follows the value')
  return value
}

test('packLists writes lists of strings that read back the same, at every header width', () => {
  const lists = [
    [],
    [''],
    ['a', 'x'.repeat(10), 'x'.repeat(11), 'x'.repeat(85), 'x'.repeat(86), 'x'.repeat(21_845)],
    ['x'.repeat(21_846), 'x'.repeat(70_000)],
    ['é', 'naïve café', '日本語', '😀 emoji', 'tab\tnew\nline\\', '\u0000nul'],
    // around the hand-copied ASCII path: its lengths, and a non-ASCII unit at either end of it
    [
      'x'.repeat(31),
      'x'.repeat(32),
      'x'.repeat(63),
      'x'.repeat(64),
      '\u007f',
      '\u0080',
      'x'.repeat(30) + 'é',
    ],
    ['é' + 'x'.repeat(30), 'x'.repeat(62) + '日', 'x'.repeat(40) + '😀'],
    Array.from({ length: 15 }, (_, i) => `f${i}`),
    Array.from({ length: 16 }, (_, i) => `f${i}`),
    Array.from({ length: 70_000 }, (_, i) => String(i)),
  ]
  assert.deepEqual(unpack(packLists(lists)), lists)
  assert.deepEqual(unpack(packLists([])), [])
})

test('packLists writes a string as ioredis would: UTF-8, a lone surrogate as U+FFFD', () => {
  const lone = 'a\ud800b'
  assert.deepEqual(unpack(packLists([[lone]])), [[Buffer.from(lone, 'utf8').toString('utf8')]])
  assert.deepEqual(unpack(packLists([[lone]])), [['a\ufffdb']])
  assert.deepEqual(unpack(packLists([['\ud800' + 'x'.repeat(10)]])), [['\ufffd' + 'x'.repeat(10)]])
})

test('packLists gives a short ASCII string the smallest header (fixstr under 32 bytes, str8 under 64)', () => {
  assert.equal(packLists([['x'.repeat(31)]]).length, 1 + 1 + 1 + 31)
  assert.equal(packLists([['x'.repeat(32)]]).length, 1 + 1 + 2 + 32)
  assert.equal(packLists([['x'.repeat(63)]]).length, 1 + 1 + 2 + 63)
})
