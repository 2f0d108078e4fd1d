import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { test } from 'node:test'

const MACHINES = new URL('../../machines/', import.meta.url)

test('machines/ imports only xstate and its own files: no I/O library reaches a machine', () => {
  const offenders: string[] = []
  for (const file of readdirSync(MACHINES).filter((f) => f.endsWith('.ts'))) {
    const source = readFileSync(new URL(file, MACHINES), 'utf8')
    for (const [, spec] of source.matchAll(/from '([^']+)'/g)) {
      if (spec !== 'xstate' && !spec!.startsWith('./')) offenders.push(`${file} imports ${spec}`)
    }
  }
  assert.deepEqual(offenders, [])
})
