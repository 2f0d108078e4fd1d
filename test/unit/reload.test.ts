import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Config, ConsumerConfig } from '../../src/config.js'
import { planReload } from '../../src/reload.js'

/** planReload compares whole consumer objects; a few keys make them as different as all of them would. */
const consumer = (name: string, over: Partial<ConsumerConfig> = {}) =>
  ({ name, stream: name, handler: `/h/${name}.mjs`, batchSize: 100, ...over }) as ConsumerConfig

const config = (consumers: ConsumerConfig[], over: Partial<Config> = {}) =>
  ({ file: '/c.json', redisUrl: 'redis://r:6379', port: null, consumers, ...over }) as unknown as Config

test('planReload sorts consumers into added, removed, changed (settings or module content) and unchanged', () => {
  const hashes = new Map([
    ['/h/a.mjs', 'A'],
    ['/h/b.mjs', 'B'],
    ['/h/c.mjs', 'C'],
    ['/h/d.mjs', 'D'],
  ])
  const hashNow = (file: string) => (file === '/h/c.mjs' ? 'C2' : (hashes.get(file) ?? 'new'))
  const plan = planReload(
    config([consumer('a'), consumer('b'), consumer('c'), consumer('d')]),
    config([consumer('a'), consumer('b', { batchSize: 5 }), consumer('c'), consumer('e')], { port: 5000 }),
    hashes,
    hashNow,
  )
  assert.deepEqual(
    {
      added: plan.added.map((c) => c.name),
      removed: plan.removed,
      changed: plan.changed.map((c) => c.name),
      unchanged: plan.unchanged,
      needsRestart: plan.needsRestart,
    },
    { added: ['e'], removed: ['d'], changed: ['b', 'c'], unchanged: ['a'], needsRestart: ['port'] },
  )
})
