import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { testPool } from '../support/pool.js'

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url))

/** Peak old-space size over live size while the churn fixture runs with `percent`. */
function churn(percent: number): number {
  // A 1 MB semi-space keeps the young generation's share of the limit small, so the ratio is the factor.
  const out = execFileSync(
    process.execPath,
    ['--import', 'tsx', '--expose-gc', '--max-semi-space-size=1', `${FIXTURES}heapChurn.ts`, String(percent)],
    { encoding: 'utf8' },
  )
  const { peak, live } = JSON.parse(out) as { peak: number; live: number }
  return peak / live
}

test('memory.heapGrowingPercent bounds the heap to that much over what survives a full GC', () => {
  // V8's own factor on a machine with memory to spare goes up to 4 (this churn peaks at ~4.4× without
  // the setting): the heap of a steady daemon sits at several times its live size. With 50 % the old
  // generation is collected at about 1.5× live (~1.7× measured, marking finishes a little later).
  const ratio = churn(50)
  assert.ok(ratio < 2.2, `old space peaked at ${ratio.toFixed(2)}× the live size`)
})

test('worker threads get the consumer’s young-generation and heap limits', async (t) => {
  const pool = testPool(t, `${FIXTURES}handlers/limits.mjs`)
  const entry = { id: 'm-1', entryId: '1-0', payload: '{}', headers: {}, fields: {}, attempt: 1 }
  const [outcome] = await pool.run({
    name: 'limits',
    stream: 'limits',
    group: 'limits',
    consumer: 'c',
    timeoutMs: 5_000,
    entries: [entry],
  })
  assert.equal(outcome?.status, 'dead')
  const limits = JSON.parse(outcome.error.message) as Record<string, number>
  assert.equal(limits.maxYoungGenerationSizeMb, 12)
  assert.equal(limits.maxOldGenerationSizeMb, 64)
})
