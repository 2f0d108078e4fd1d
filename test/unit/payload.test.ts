import assert from 'node:assert/strict'
import { test } from 'node:test'
import { entryProblem, type PayloadRules } from '../../src/payload.js'
import { entry } from '../support/machine.js'

const text: PayloadRules = { name: 'orders', payloadFormat: 'text', maxPayloadBytes: 8 }
const json: PayloadRules = { ...text, payloadFormat: 'json' }

const codeOf = (payload: string | null, rules: PayloadRules, over = {}) =>
  entryProblem(entry('1-0', { payload, ...over }), rules)?.code ?? 'ok'

test('a text consumer takes any payload up to maxPayloadBytes, and entries without one', () => {
  assert.deepEqual(
    ['not json', '', null, '12345678', '123456789'].map((p) => codeOf(p, text)),
    ['ok', 'ok', 'ok', 'ok', 'ACK_ERR_PAYLOAD_TOO_LARGE'],
  )
})

test('a json consumer also refuses a missing payload and one that does not parse', () => {
  assert.deepEqual(
    ['{"a":1}', '[]', '"x"', 'not json', '{"a":', null, '{"a":"long"}'].map((p) => codeOf(p, json)),
    [
      'ok',
      'ok',
      'ok',
      'ACK_ERR_PAYLOAD_INVALID',
      'ACK_ERR_PAYLOAD_INVALID',
      'ACK_ERR_PAYLOAD_MISSING',
      'ACK_ERR_PAYLOAD_TOO_LARGE',
    ],
  )
})

test('the size is counted in UTF-8 bytes, not in characters', () => {
  const rules = { ...text, maxPayloadBytes: 6 }
  // 'é' is 2 bytes, '€' 3, '😀' 4 (two UTF-16 code units).
  assert.deepEqual(
    ['éé', 'ééé', 'éééé', '€€', '€€€', '😀', '😀😀'].map((p) => codeOf(p, rules)),
    [
      'ok',
      'ok',
      'ACK_ERR_PAYLOAD_TOO_LARGE',
      'ok',
      'ACK_ERR_PAYLOAD_TOO_LARGE',
      'ok',
      'ACK_ERR_PAYLOAD_TOO_LARGE',
    ],
  )
})

test('an entry deleted while pending is gone, whatever the rules', () => {
  assert.equal(codeOf(null, json, { gone: true }), 'ACK_ERR_ENTRY_GONE')
  assert.equal(codeOf(null, text, { gone: true }), 'ACK_ERR_ENTRY_GONE')
})

test('each refusal says what was wrong, with the entry, and what to do', () => {
  assert.deepEqual(entryProblem(entry('7-0', { id: 'o-1', payload: '123456789' }), text), {
    name: 'PayloadError',
    code: 'ACK_ERR_PAYLOAD_TOO_LARGE',
    message:
      'payload of entry 7-0 (message o-1) is 9 bytes, over maxPayloadBytes (8) of consumer "orders". ' +
      'Raise maxPayloadBytes, or store large bodies elsewhere and publish a reference; then ' +
      '`ackstate dlq replay` it.',
  })
  assert.deepEqual(entryProblem(entry('7-0', { id: 'o-1', payload: null }), json), {
    name: 'PayloadError',
    code: 'ACK_ERR_PAYLOAD_MISSING',
    message:
      'entry 7-0 (message o-1) has no payload field, and consumer "orders" declares payloadFormat "json". ' +
      'Publish it with a payload, or set payloadFormat to "text" to receive entries without one; then ' +
      '`ackstate dlq replay` it.',
  })
  const invalid = entryProblem(entry('7-0', { id: 'o-1', payload: 'nope' }), json)!
  assert.equal(invalid.code, 'ACK_ERR_PAYLOAD_INVALID')
  assert.match(
    invalid.message,
    /^payload of entry 7-0 \(message o-1\) is not valid JSON \(.+\), and consumer/,
  )
  assert.match(invalid.message, /Fix the producer, or set payloadFormat to "text"/)
})
