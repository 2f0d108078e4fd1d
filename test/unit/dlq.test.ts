import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseFilter } from '../../src/dlq/command.js'
import { decodeLetter, encodeLetter, lettersOf, splitFields, type DeadLetter } from '../../src/dlq/letter.js'
import { emit, letterTable, resultTable } from '../../src/dlq/output.js'
import { UsageError } from '../../src/errors.js'
import { dead, entry } from '../support/machine.js'

const letter: DeadLetter = {
  id: 'o-1',
  stream: 'orders',
  group: 'billing',
  consumer: 'host:1:abc',
  entryId: '1700000000000-0',
  payload: '{"total":1}',
  headers: { 'published-at': '2026-01-01T00:00:00.000Z' },
  fields: { tenant: 't-1' },
  error: { name: 'PermanentError', code: 'ACK_ERR_PERMANENT', message: 'bad order' },
  attempts: 2,
  failedAt: '2026-01-01T00:00:01.000Z',
}

test('a dead letter reads back as it was written, and replay gets exactly the original fields', () => {
  const flat = encodeLetter(letter)
  assert.deepEqual(decodeLetter('orders', '1700000001000-0', flat), {
    ...letter,
    dlqEntryId: '1700000001000-0',
  })
  assert.deepEqual(splitFields(flat).original, [
    'id',
    'o-1',
    'payload',
    '{"total":1}',
    'headers',
    '{"published-at":"2026-01-01T00:00:00.000Z"}',
    'tenant',
    't-1',
  ])
})

test('the letters of a batch carry each entry, its error and its attempts', () => {
  const e = entry('5-0', { attempt: 3, fields: { a: 'b' } })
  const [made] = lettersOf(
    { name: 'orders', stream: 'orders', group: 'g', consumer: 'c', outcomes: [dead(e)], entries: [e] },
    'T',
  )
  assert.deepEqual(made, {
    id: 'm-5-0',
    stream: 'orders',
    group: 'g',
    consumer: 'c',
    entryId: '5-0',
    payload: '{}',
    headers: {},
    fields: { a: 'b' },
    error: { name: 'PermanentError', code: 'ACK_ERR_PERMANENT', message: 'bad order' },
    attempts: 3,
    failedAt: 'T',
  })
})

test('an entry without dlq.* fields (written by hand) still reads', () => {
  assert.deepEqual(decodeLetter('orders', '1000-0', ['payload', 'x']), {
    stream: 'orders',
    dlqEntryId: '1000-0',
    id: '1000-0',
    entryId: '1000-0',
    group: '',
    consumer: '',
    error: { name: 'Error', code: 'unknown', message: '' },
    attempts: 0,
    failedAt: '1970-01-01T00:00:01.000Z',
    payload: 'x',
    headers: {},
    fields: {},
  })
})

function usageMessage(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof UsageError)
    assert.equal(err.code, 'ACK_ERR_USAGE')
    return err.message
  }
  assert.fail('accepted')
}

test('flags: a scope is required, times are ISO 8601, purge needs --yes or a filter', () => {
  assert.deepEqual(parseFilter('list', { stream: 'orders' }), { limit: 100 })
  assert.deepEqual(
    parseFilter('replay', { all: true, since: '1970-01-01T00:00:01Z', until: '1970-01-01T00:00:02Z' }),
    {
      sinceMs: 1000,
      untilMs: 2000,
    },
  )
  assert.deepEqual(parseFilter('purge', { stream: 'orders', yes: true, limit: '5' }), { limit: 5 })
  assert.deepEqual(
    [
      () => parseFilter('list', {}),
      () => parseFilter('list', { stream: 'a', all: true }),
      () => parseFilter('list', { stream: '{a}' }),
      () => parseFilter('list', { stream: 'a', since: 'yesterday' }),
      () => parseFilter('list', { stream: 'a', since: '2026-02-01', until: '2026-01-01' }),
      () => parseFilter('list', { stream: 'a', limit: '0' }),
      () => parseFilter('show', { stream: 'a' }),
      () => parseFilter('purge', { stream: 'a' }),
    ].map(usageMessage),
    [
      'dlq list needs --stream S (the stream as consumers read it), or --all.',
      'dlq: pass either --stream S or --all, not both.',
      'dlq: --stream "{a}" must not contain braces or spaces; pass the stream\'s own name.',
      'dlq: --since "yesterday" is not an ISO 8601 time; use e.g. 2026-01-31T12:00:00Z.',
      'dlq: --since (2026-02-01) is after --until (2026-01-01).',
      'dlq: --limit must be a whole number from 1, got "0".',
      'dlq show needs --id ID (a message id or a dead-letter entry id; `ackstate dlq list` shows both).',
      'dlq purge would delete every dead letter of {a}:dlq. Add --yes to confirm, or narrow it with --id, --since or --until.',
    ],
  )
})

test('a terminal gets a table, a pipe JSON lines, --json one array', () => {
  const written: string[] = []
  const out = (isTTY: boolean) => ({
    stdout: { isTTY, write: (s: string) => written.push(s) },
    stderr: { write: () => 0 },
  })
  const letters = [{ ...letter, dlqEntryId: '9-0' }]
  emit(out(true), letters, false, letterTable)
  emit(out(false), letters, false, letterTable)
  emit(out(true), letters, true, letterTable)
  assert.deepEqual(written, [
    'STREAM  DLQ ENTRY  MESSAGE ID  GROUP    CODE               ATTEMPTS  FAILED AT\n' +
      'orders  9-0        o-1         billing  ACK_ERR_PERMANENT  2         2026-01-01T00:00:01.000Z\n',
    `${JSON.stringify(letters[0])}\n`,
    `${JSON.stringify(letters)}\n`,
  ])
  assert.equal(
    resultTable([
      { stream: 'orders', dlqEntryId: '9-0', id: 'o-1', status: 'replayed', entryId: '10-0' },
      { stream: 'orders', dlqEntryId: '9-1', id: 'o-2', status: 'skipped', reason: 'lost' },
    ]),
    'STREAM  DLQ ENTRY  MESSAGE ID  STATUS    DETAIL\n' +
      'orders  9-0        o-1         replayed  10-0\n' +
      'orders  9-1        o-2         skipped   lost\n' +
      'replayed: 1, skipped: 1\n',
  )
})
