import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { ERROR_CODES, HandlerError, PermanentError, isPermanentError } from '../../src/errors.js'

test('every error code is documented in docs/errors.md, and nothing else is', () => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8')
  const documented = [...doc.matchAll(/^\| `(ACK_ERR_[A-Z_]+)` \|/gm)].map((m) => m[1])
  assert.deepEqual([...documented].sort(), [...ERROR_CODES].sort())
})

test('errors carry their class name and code', () => {
  const err = new HandlerError('ACK_ERR_HANDLER_TIMEOUT', 'slow')
  assert.deepEqual(
    { name: err.name, code: err.code, message: err.message },
    {
      name: 'HandlerError',
      code: 'ACK_ERR_HANDLER_TIMEOUT',
      message: 'slow',
    },
  )
})

test('a PermanentError is recognised also when it comes from another copy of the module', () => {
  assert.equal(isPermanentError(new PermanentError('bad')), true)
  assert.equal(isPermanentError(Object.assign(new Error('x'), { name: 'PermanentError' })), true)
  assert.equal(isPermanentError(new Error('x')), false)
  assert.equal(isPermanentError(undefined), false)
})
