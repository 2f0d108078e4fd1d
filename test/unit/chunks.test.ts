import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { test, type TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import type { Entry } from '../../machines/types.js'
import { CHUNK_WORTH_MS, ChunkPlanner } from '../../src/pool/chunks.js'
import { testPool } from '../support/pool.js'

const SPINS_HANDLER = fileURLToPath(new URL('../fixtures/handlers/spins.mjs', import.meta.url))

test('a batch of a handler not yet measured spreads over every thread', () => {
  const planner = new ChunkPlanner(4)
  assert.deepEqual(
    [1, 2, 3, 4, 20, 500].map((n) => planner.chunks(n)),
    [1, 2, 3, 4, 4, 4],
  )
})

test('a cheap handler gets one chunk until a batch carries CHUNK_WORTH_MS per thread', () => {
  const planner = new ChunkPlanner(2)
  planner.record(100, 100 * 0.01) // 10 µs a message
  assert.equal(planner.chunks(20), 1)
  assert.equal(planner.chunks(CHUNK_WORTH_MS / 0.01), 1)
  assert.equal(planner.chunks(CHUNK_WORTH_MS / 0.01 + 1), 2)
  assert.equal(planner.chunks(500), 2)
})

test('the estimate follows a handler that turns costly within a few batches, and ignores nonsense', () => {
  const planner = new ChunkPlanner(2)
  planner.record(20, 0.2)
  assert.equal(planner.chunks(10), 1)
  for (const bad of [Number.NaN, -1, Number.POSITIVE_INFINITY]) planner.record(10, bad)
  planner.record(0, 5)
  assert.equal(planner.chunks(10), 1, 'bad samples change nothing')
  planner.record(10, 10 * 5) // 5 ms a message now
  assert.equal(planner.chunks(2), 2)
})

/**
 * Runs `batches` batches of `size` messages through a two-thread pool; resolves with the tasks each
 * batch became. The handler also checks every message ran once.
 */
async function tasksPerBatch(t: TestContext, spinMs: number, batches: number, size: number) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ackstate-chunks-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const pool = testPool(t, SPINS_HANDLER, { threads: 2, capacity: size })
  const tasks: number[] = []
  for (let b = 0; b < batches; b++) {
    const file = path.join(dir, `${b}.txt`)
    const entries: Entry[] = Array.from({ length: size }, (_, i) => ({
      id: `${b}-${i}`,
      entryId: `${b + 1}-${i}`,
      payload: null,
      headers: {},
      fields: { file, spinMs: String(spinMs) },
      attempt: 1,
    }))
    const before = pool.stats().completed
    const outcomes = await pool.run({
      name: 'c',
      stream: 's',
      group: 'g',
      consumer: 'c1',
      timeoutMs: 10_000,
      entries,
    })
    tasks.push(pool.stats().completed - before)
    assert.deepEqual(
      outcomes.map((o) => o.status),
      entries.map(() => 'ok'),
    )
    const ran = readFileSync(file, 'utf8').trim().split('\n')
    assert.deepEqual(ran.sort(), entries.map((e) => e.id).sort())
  }
  return tasks
}

test('a pool runs a few cheap messages as one task once it has measured them', async (t) => {
  // The first batch, of unknown cost, spreads over both threads; after it, a batch is cheap enough
  // for one task. Not every one: a fresh thread's warm-up, or a task held up by a loaded machine,
  // reads as a costlier handler until the running average forgets it a few batches later. Without
  // the planner every batch is two tasks.
  const tasks = await tasksPerBatch(t, 0, 16, 10)
  assert.equal(tasks[0], 2, `the unmeasured first batch spreads: ${tasks.join(',')}`)
  const single = tasks.slice(1).filter((n) => n === 1).length
  assert.ok(single >= 8, `most later batches run as one task: ${tasks.join(',')}`)
})

test('a pool keeps spreading a batch of costly messages over both threads', async (t) => {
  assert.deepEqual(await tasksPerBatch(t, 5, 4, 4), [2, 2, 2, 2])
})
