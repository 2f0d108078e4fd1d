import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { visualize } from '../../src/visualize/command.js'
import { MACHINES } from '../../src/visualize/machines.js'

for (const machine of Object.keys(MACHINES)) {
  test(`docs/machines/${machine}.mmd is what the generator draws from the machine today`, async () => {
    const committed = readFileSync(new URL(`../../docs/machines/${machine}.mmd`, import.meta.url), 'utf8')
    const { output } = await visualize({ machine, format: 'mermaid' })
    assert.equal(committed, output, 'stale diagram: run `npm run diagrams` and commit docs/machines/')
  })
}
