import assert from 'node:assert/strict'
import { test } from 'node:test'
import { QueryTypes, Sequelize } from 'sequelize'
import { copyLine, directCopy } from '../../src/store/direct.js'
import { testDatabase } from '../support/postgres.js'

const COPY = 'COPY t (k, v) FROM STDIN'

test('directCopy sends a COPY in one write: every value round-trips, and a failed COPY leaves its connection usable', async (t) => {
  const db = await testDatabase(t)
  // One connection, so every statement below runs on the connection the failures happened on.
  const store = new Sequelize(db.url, { dialect: 'postgres', logging: false, pool: { max: 1, min: 0 } })
  t.after(() => store.close())
  await store.query('CREATE TABLE t (k text PRIMARY KEY, v text NOT NULL)')
  const select = () =>
    store.query<{ k: string; v: string }>('SELECT k, v FROM t ORDER BY k', { type: QueryTypes.SELECT })

  // The specials COPY escapes, multi-byte text, and 2.5 MB: three CopyData messages of at most 1 MB.
  const values = [
    'tab\there',
    'new\nline',
    'back\\slash',
    'cr\rhere',
    'é 日本 😀',
    '\\N',
    'x'.repeat(2_500_000),
  ]
  const text = values.map((v, i) => copyLine([`k${i}`, v])).join('')
  assert.equal(await directCopy(store, COPY, text), values.length)
  assert.deepEqual(
    await select(),
    values.map((v, i) => ({ k: `k${i}`, v })),
  )

  // A row failing mid-data rolls the whole COPY back; the server's error is what rejects.
  await assert.rejects(
    directCopy(store, COPY, copyLine(['fresh', 'a']) + copyLine(['k0', 'b'])),
    /duplicate key value violates unique constraint "t_pkey"/,
  )
  // A statement failing before any data is read: the server ignores the data already sent after it.
  await assert.rejects(
    directCopy(store, 'COPY missing (k, v) FROM STDIN', text),
    /relation "missing" does not exist/,
  )

  // The same connection goes on, in step with the server: the data sent after each failure was not
  // read as statements, and the next COPY and query get their own answers.
  assert.equal(await directCopy(store, COPY, copyLine(['after', 'ok'])), 1)
  const rows = await select()
  assert.equal(rows.length, values.length + 1)
  assert.ok(!rows.some((r) => r.k === 'fresh'), 'the failed COPY added nothing')
  assert.deepEqual(
    rows.find((r) => r.k === 'after'),
    { k: 'after', v: 'ok' },
  )
})
