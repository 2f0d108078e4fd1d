/**
 * Regenerates docs/machines/<name>.svg and .mmd for every machine `ackstate visualize` knows.
 * `npm run diagrams` after changing a machine; test/unit/diagrams.test.ts fails while they are stale.
 */
import { writeFileSync } from 'node:fs'
import { visualize } from '../src/visualize/command.js'
import { MACHINES } from '../src/visualize/machines.js'

for (const machine of Object.keys(MACHINES)) {
  for (const [format, ext] of [
    ['mermaid', 'mmd'],
    ['svg', 'svg'],
  ] as const) {
    const { output } = await visualize({ machine, format })
    writeFileSync(new URL(`../docs/machines/${machine}.${ext}`, import.meta.url), output)
  }
}
