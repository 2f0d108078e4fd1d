import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import type { AnyStateMachine } from 'xstate'
import { RuntimeError } from '../../src/errors.js'
import { parseFormat, visualize } from '../../src/visualize/command.js'
import { toDot } from '../../src/visualize/dot.js'
import { buildGraph } from '../../src/visualize/graph.js'
import { MACHINES, selectMachines } from '../../src/visualize/machines.js'
import { mermaidId, mermaidText, toMermaid } from '../../src/visualize/mermaid.js'
import { renderSvg } from '../../src/visualize/svg.js'
import {
  featureMachine,
  pairs,
  parseDot,
  parseMermaid,
  sorted,
  svgTexts,
  walk,
} from '../support/visualize.js'

const cases: [string, AnyStateMachine][] = [...Object.entries(MACHINES), ['feature fixture', featureMachine]]

for (const [name, machine] of cases) {
  const { states, arrows } = walk(machine)
  const graph = buildGraph(machine)

  test(`${name}: the graph model holds every state and transition of the machine`, () => {
    assert.deepEqual(sorted(graph.nodes.map((n) => n.id)), sorted(states.map((s) => s.id)))
    const modelArrows = graph.edges.flatMap((e) =>
      (e.targets.length ? e.targets : [e.source]).map((t) => `${e.source} -> ${t}`),
    )
    assert.deepEqual(sorted(modelArrows), sorted(arrows.map((a) => `${a.source} -> ${a.target}`)))
  })

  test(`${name}: mermaid draws every state in its parent and every transition with its label`, () => {
    const output = toMermaid([graph])
    assert.equal(output.split('\n')[0], 'stateDiagram-v2')
    const parsed = parseMermaid(output)
    const id = (stateId: string | null) => stateId && mermaidId(stateId)
    assert.deepEqual(pairs(parsed.parents), pairs(new Map(states.map((s) => [id(s.id)!, id(s.parent)]))))
    const initials = states.filter((s) => s.initial).map((s) => [id(s.id)!, id(s.initial)] as const)
    assert.deepEqual(pairs(parsed.initials), pairs(new Map(initials)))
    const notes = states.flatMap((s) => s.invokes.map((src) => `${id(s.id)} : invoke ${src}`))
    assert.deepEqual(sorted(parsed.notes), sorted(notes))
    const expected = arrows.map((a) => `${id(a.source)} -> ${id(a.target)} : ${mermaidText(a.label)}`)
    assert.deepEqual(sorted(parsed.arrows), sorted(expected))
  })

  test(`${name}: dot draws every state in its cluster and every transition with its label`, () => {
    const parsed = parseDot(toDot([graph]))
    assert.deepEqual(pairs(parsed.parents), pairs(new Map(states.map((s) => [s.id, s.parent]))))
    const initials = states.filter((s) => s.initial).map((s) => [s.id, s.initial] as const)
    assert.deepEqual(pairs(parsed.initials), pairs(new Map(initials)))
    const leaves = states.filter((s) => !states.some((c) => c.parent === s.id))
    const boxes = leaves.map((s) => [s.key, ...s.invokes.map((src) => `invoke ${src}`)].join('\n'))
    assert.deepEqual(sorted(parsed.labels), sorted(boxes))
    assert.deepEqual(
      sorted(parsed.arrows),
      sorted(arrows.map((a) => `${a.source} -> ${a.target} : ${a.label}`)),
    )
  })

  test(`${name}: svg is well-formed and shows every state, invoke and transition label`, async () => {
    const { svg, warnings } = await renderSvg(toDot([graph]))
    assert.deepEqual(warnings, [])
    const texts = svgTexts(svg)
    const missing = [
      ...states.map((s) => (s.parent === null ? s.id : s.key)),
      ...states.flatMap((s) => s.invokes.map((src) => `invoke ${src}`)),
      ...arrows.map((a) => a.label),
    ].filter((t) => !texts.has(t))
    assert.deepEqual(missing, [])
  })
}

test('each registered machine renders the same through the command as through the renderers', async () => {
  for (const [name, machine] of Object.entries(MACHINES)) {
    const graph = buildGraph(machine)
    assert.equal((await visualize({ machine: name, format: 'mermaid' })).output, toMermaid([graph]))
    assert.equal((await visualize({ machine: name, format: 'dot' })).output, toDot([graph]))
  }
})

test('without --machine every registered machine is drawn, each in its own cluster', async () => {
  const { output } = await visualize({ format: 'dot' })
  const roots = [...parseDot(output).parents].filter(([, parent]) => parent === null).map(([id]) => id)
  assert.deepEqual(
    roots,
    Object.values(MACHINES).map((m) => m.id),
  )
})

test('an unknown machine is a usage error that lists the known ones', async () => {
  const names = Object.keys(MACHINES).join(', ')
  assert.throws(() => selectMachines('nope'), {
    name: 'UsageError',
    code: 'ACK_ERR_USAGE',
    message: `Unknown machine "nope". Known machines: ${names}.`,
  })
  await assert.rejects(visualize({ machine: 'nope', format: 'json' }), RuntimeError)
})

test('the format comes from --format, else from the --out extension, else mermaid', () => {
  assert.equal(parseFormat('dot', 'x.svg'), 'dot')
  assert.equal(parseFormat(undefined, 'docs/machines/consumer.SVG'), 'svg')
  assert.equal(parseFormat(undefined, 'a.mmd'), 'mermaid')
  assert.equal(parseFormat(undefined, 'a.txt'), 'mermaid')
  assert.equal(parseFormat(undefined, undefined), 'mermaid')
  assert.throws(() => parseFormat('png', undefined), { code: 'ACK_ERR_USAGE' })
})

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const cli = (...args: string[]) => {
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
  })
  return { status: run.status, stdout: run.stdout, stderr: run.stderr }
}

test('ackstate visualize exits 1 with one line naming the known machines', () => {
  assert.deepEqual(cli('visualize', '--machine', 'nope'), {
    status: 1,
    stdout: '',
    stderr: `ackstate: ACK_ERR_USAGE: Unknown machine "nope". Known machines: ${Object.keys(MACHINES).join(', ')}.\n`,
  })
})

test('ackstate visualize --out writes the file in the format its extension names', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ackstate-visualize-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const out = join(dir, 'nested', 'consumer.mmd')
  assert.deepEqual(cli('visualize', '--machine', 'consumer', '--out', out), {
    status: 0,
    stdout: '',
    stderr: '',
  })
  assert.equal(
    readFileSync(out, 'utf8'),
    (await visualize({ machine: 'consumer', format: 'mermaid' })).output,
  )
})
