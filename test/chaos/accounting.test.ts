import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  account,
  percentile,
  type AccountingInput,
  type InvocationRecord,
  type PublishRecord,
} from './accounting.js'
import { prng } from './prng.js'
import { renderTable, type ScenarioResult } from './report.js'

const pub = (
  id: string,
  outcome: PublishRecord['outcome'],
  t0: number,
  extra: Partial<PublishRecord> = {},
): PublishRecord => ({
  id,
  via: 'api',
  outcome,
  t0,
  t: t0 + 1,
  backup: true,
  ...extra,
})
const inv = (e: InvocationRecord['e'], id: string, token: string, t: number): InvocationRecord => ({
  e,
  id,
  inv: token,
  attempt: 1,
  pid: 1,
  t,
})

function input(partial: Partial<AccountingInput>): AccountingInput {
  return {
    publishes: [],
    invocations: [],
    deadLettered: new Map(),
    effects: new Map(),
    faults: [],
    probe: { ok: true, ms: 5 },
    ...partial,
  }
}

test('nothing lost: every ok publish completed or dead-lettered', () => {
  const result = account(
    input({
      publishes: [pub('a', 'ok', 0), pub('b', 'ok', 0), pub('c', 'ok', 0, { via: 'xadd', backup: false })],
      invocations: [
        inv('start', 'a', 'a1', 10),
        inv('done', 'a', 'a1', 12),
        inv('start', 'c', 'c1', 10),
        inv('done', 'c', 'c1', 11),
      ],
      deadLettered: new Map([['b', 20]]),
      effects: new Map([
        ['a', 1],
        ['c', 1],
      ]),
    }),
  )
  assert.deepEqual(
    {
      lost: result.lost,
      lostUnbacked: result.lostUnbacked,
      completed: result.completed,
      dead: result.deadLettered,
      published: result.published,
    },
    {
      lost: [],
      lostUnbacked: [],
      completed: 2,
      dead: 1,
      published: { attempted: 3, ok: 3, failed: 0, unknown: 0, api: 2, xadd: 1 },
    },
  )
})

test('lost: ok and never settled, split by whether a backup row was written', () => {
  const result = account(
    input({
      publishes: [
        pub('a', 'ok', 0),
        pub('x', 'ok', 0, { via: 'xadd', backup: false }),
        pub('f', 'failed', 0, { code: 'ACK_ERR_STORE_UNAVAILABLE' }),
        pub('u', 'unknown', 0, { code: 'ACK_ERR_REDIS_UNAVAILABLE' }),
      ],
    }),
  )
  assert.deepEqual([result.lost, result.lostUnbacked], [['a'], ['x']])
  assert.equal(result.published.failed, 1)
  assert.equal(result.published.unknown, 1)
})

test('a publish retried after a refusal counts once, as ok, and a refused one delivered later is reported', () => {
  const result = account(
    input({
      publishes: [pub('a', 'unknown', 0), pub('a', 'ok', 5), pub('b', 'unknown', 0)],
      invocations: [inv('done', 'a', 'a1', 10), inv('done', 'b', 'b1', 30)],
    }),
  )
  assert.deepEqual(result.published, { attempted: 2, ok: 1, failed: 0, unknown: 1, api: 2, xadd: 0 })
  assert.equal(result.failedThenDelivered, 1)
  assert.deepEqual(result.lost, [])
})

test('duplicate invocations: after the first completion, or completing alongside it; retries of failures do not count', () => {
  const result = account(
    input({
      publishes: [pub('a', 'ok', 0), pub('b', 'ok', 0)],
      invocations: [
        // a: a failed attempt (killed), the completion, a re-delivery after it, and a concurrent run.
        inv('start', 'a', 'a1', 1),
        inv('start', 'a', 'a2', 5),
        inv('start', 'a', 'a4', 6),
        inv('done', 'a', 'a2', 10),
        inv('done', 'a', 'a4', 11),
        inv('start', 'a', 'a3', 20),
        inv('done', 'a', 'a3', 21),
        // b: a retry after a failure, then the completion: no duplicate.
        inv('start', 'b', 'b1', 1),
        inv('fail', 'b', 'b1', 2),
        inv('start', 'b', 'b2', 3),
        inv('done', 'b', 'b2', 4),
      ],
      effects: new Map([
        ['a', 2],
        ['b', 1],
      ]),
    }),
  )
  assert.equal(result.invocations, 6)
  assert.equal(result.duplicateInvocations, 2)
  assert.equal(result.duplicateEffects, 1)
})

test('unexpected: completed or dead-lettered but never published', () => {
  const result = account(
    input({
      publishes: [pub('a', 'ok', 0)],
      invocations: [inv('done', 'a', 'a1', 1), inv('done', 'ghost', 'g1', 2)],
      deadLettered: new Map([['phantom', 3]]),
    }),
  )
  assert.deepEqual(result.unexpected, ['ghost', 'phantom'])
})

test('recovery: from the heal until everything outstanding at the fault settled; else the first completion after it', () => {
  const result = account(
    input({
      publishes: [pub('early', 'ok', 0), pub('a', 'ok', 90), pub('b', 'ok', 150), pub('late', 'ok', 500)],
      invocations: [
        inv('done', 'early', 'e', 50),
        inv('done', 'a', 'a1', 400),
        inv('done', 'b', 'b1', 350),
        inv('done', 'late', 'l', 510),
      ],
      faults: [
        // a and b were outstanding (published before the heal at 200, settled after the fault at 100).
        { kind: 'k', at: 100, healedAt: 200 },
        // nothing outstanding: the first completion after the heal.
        { kind: 'k', at: 450, healedAt: 460 },
        // nothing settled after it.
        { kind: 'k', at: 900, healedAt: 900 },
      ],
    }),
  )
  assert.deepEqual(result.recoveryMs, [200, 50, null])
})

test('still consuming follows the probe', () => {
  assert.equal(account(input({ probe: { ok: false, ms: null } })).stillConsuming, false)
  assert.equal(account(input({ probe: null })).stillConsuming, false)
  assert.equal(account(input({})).stillConsuming, true)
})

test('percentile: nearest rank, nulls ignored', () => {
  assert.equal(percentile([], 50), null)
  assert.equal(percentile([null, 30, 10, 20], 50), 20)
  assert.equal(percentile([10, 20, 30, 40], 50), 20)
  assert.equal(percentile([10, 20, 30, 40], 100), 40)
})

test('the seeded generator repeats itself and forks independently', () => {
  const draw = (seed: number, label: string) => {
    const r = prng(seed).fork(label)
    return [r.int(0, 1000), r.int(0, 1000), r.pick(['a', 'b', 'c'])]
  }
  assert.deepEqual(draw(42, 'kill'), draw(42, 'kill'))
  assert.notDeepEqual(draw(42, 'kill'), draw(43, 'kill'))
  assert.notDeepEqual(draw(42, 'kill'), draw(42, 'flush'))
  const r = prng(7)
  for (let i = 0; i < 1000; i++) {
    const n = r.int(3, 5)
    assert.ok(n >= 3 && n <= 5 && Number.isInteger(n))
  }
})

test('the CHAOS.md table shows each scenario, its recovery percentiles, and skipped ones', () => {
  const base: ScenarioResult = {
    family: 'redis',
    fault: 'FLUSHALL',
    runs: 2,
    seed: 1,
    published: { attempted: 12, ok: 10, failed: 1, unknown: 1, api: 9, xadd: 3 },
    completed: 10,
    deadLettered: 0,
    lost: 0,
    lostUnbacked: 2,
    invocations: 11,
    duplicateInvocations: 1,
    duplicateEffects: 0,
    unexpected: 0,
    recoveryMs: [120, 15_000],
    stillConsuming: true,
    probeMs: 8,
    notes: [],
    durationMs: 1,
    passed: true,
  }
  const table = renderTable([base, { ...base, fault: 'Sentinel', skipped: 'no sentinel' }])
  const [, , row, skipped] = table.split('\n')
  assert.equal(
    row,
    '| redis | FLUSHALL | 2 | 10 / 1 / 1 | 0 | 2 | 1 | 0 | 0 | 120 ms / 15.0 s | yes | pass |',
  )
  assert.equal(skipped, '| redis | Sentinel | 0 | – | – | – | – | – | – | – | – | skipped |')
})
