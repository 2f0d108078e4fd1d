import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { test, type TestContext } from 'node:test'
import { StoreError } from '../../src/errors.js'
import { connectStore, isLocalUrl, migrate, openStore } from '../../src/store/index.js'
import { databaseExists, query, testDatabase, testLogger } from '../support/postgres.js'
import { ALL_MIGRATIONS } from '../support/store.js'

const store = { enabled: true, migrateOnStart: true }

/** The coded error a promise rejects with, as `{ code, message }`. */
async function failure(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise
  } catch (err) {
    assert.ok(err instanceof StoreError, `expected a StoreError, got ${String(err)}`)
    return { code: err.code, message: err.message }
  }
  assert.fail('it resolved')
}

async function applied(url: string): Promise<string[]> {
  return (await query<{ name: string }>(url, 'SELECT name FROM ackstate_migrations ORDER BY name')).map(
    (r) => r.name,
  )
}

test('openStore creates a missing database on a local URL, logs it and migrates it', async (t) => {
  const { name, url } = await testDatabase(t, { create: false })
  const { log, lines } = testLogger('info')
  const sequelize = await openStore({ databaseUrl: url, store }, log)
  t.after(() => sequelize?.close())
  assert.equal(await databaseExists(name), true)
  assert.deepEqual(await applied(url), ALL_MIGRATIONS)
  assert.deepEqual(
    lines.map((l) => [l.msg, l.database ?? l.migration]),
    [['created the missing database', name], ...ALL_MIGRATIONS.map((m) => ['migration applied', m])],
  )
})

test('two instances starting at once on a missing database both come up; each migration runs once', async (t) => {
  const { url } = await testDatabase(t, { create: false })
  const { log, lines } = testLogger('info')
  const both = await Promise.all([
    openStore({ databaseUrl: url, store }, log),
    openStore({ databaseUrl: url, store }, log),
  ])
  t.after(async () => {
    for (const s of both) await s?.close()
  })
  assert.deepEqual(await applied(url), ALL_MIGRATIONS)
  assert.deepEqual(
    lines.filter((l) => l.msg === 'migration applied').map((l) => l.migration),
    ALL_MIGRATIONS,
  )
})

test('a missing database is an error naming it when it may not be created (a non-local URL)', async (t) => {
  const { name, url } = await testDatabase(t, { create: false })
  const { code, message } = await failure(
    connectStore(url, { logger: testLogger().log, createIfMissing: false }),
  )
  assert.equal(code, 'ACK_ERR_STORE_UNAVAILABLE')
  assert.match(message, new RegExp(`^Database "${name}" does not exist on 127\\.0\\.0\\.1:5432 `))
  assert.match(
    message,
    new RegExp(`create it \\(\`createdb ${name}\`.*or point DATABASE_URL at an existing database`),
  )
  assert.equal(await databaseExists(name), false)
})

test('only a URL on this machine counts as local', () => {
  assert.deepEqual(
    [
      'postgres://u@127.0.0.1:5432/a',
      'postgres://u@localhost/a',
      'postgres://u@[::1]:5432/a',
      'postgres://u:p@db.example.com:5432/a',
      'postgres://u@10.0.0.5/a',
    ].map(isLocalUrl),
    [true, true, true, false, false],
  )
})

test('a refused connection is ACK_ERR_STORE_UNAVAILABLE naming the redacted URL and what to check', async () => {
  const { code, message } = await failure(
    openStore({ databaseUrl: 'postgres://app:s3cret@127.0.0.1:1/ackstate', store }, testLogger().log),
  )
  assert.deepEqual(
    { code, message },
    {
      code: 'ACK_ERR_STORE_UNAVAILABLE',
      message:
        'PostgreSQL at postgres://app:***@127.0.0.1:1/ackstate refused the connection: nothing listens on ' +
        '127.0.0.1:1. Check DATABASE_URL (or databaseUrl in the config file) and that the server runs ' +
        '(locally `bash scripts/services.sh` starts one), or set ACKSTATE_STORE_ENABLED=false to run ' +
        'without PostgreSQL.',
    },
  )
})

test('with migrateOnStart false, a database lacking migrations stops start-up with ACK_ERR_STORE_NOT_MIGRATED', async (t) => {
  const { name, url } = await testDatabase(t)
  const checkOnly = { enabled: true, migrateOnStart: false }
  const { code, message } = await failure(openStore({ databaseUrl: url, store: checkOnly }, testLogger().log))
  assert.deepEqual(
    { code, message },
    {
      code: 'ACK_ERR_STORE_NOT_MIGRATED',
      message:
        `Database "${name}" on 127.0.0.1:5432 lacks ${ALL_MIGRATIONS.length} migration(s): ${ALL_MIGRATIONS.join(', ')}. Run \`ackstate migrate\` ` +
        "(the Procfile's release phase does on Heroku), or set ACKSTATE_MIGRATE_ON_START=true " +
        '(store.migrateOnStart) to apply them at start.',
    },
  )
  const migrated = await openStore({ databaseUrl: url, store }, testLogger().log)
  await migrated?.close()
  const checked = await openStore({ databaseUrl: url, store: checkOnly }, testLogger().log)
  t.after(() => checked?.close())
  assert.ok(checked, 'a migrated database passes the check')
})

test('with the store disabled, openStore connects to nothing and resolves with null', async () => {
  const result = await openStore(
    { databaseUrl: 'postgres://app@127.0.0.1:1/none', store: { enabled: false, migrateOnStart: true } },
    testLogger().log,
  )
  assert.equal(result, null)
})

/** A migrations directory of this test's own (CommonJS files: a temp dir has no package.json). */
function migrationsDir(t: TestContext, files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'ackstate-migrations-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  for (const [file, sql] of Object.entries(files)) {
    writeFileSync(
      path.join(dir, file),
      `exports.up = ({ context }) => context.sequelize.query(${JSON.stringify(sql)})\n` +
        'exports.down = async () => {}\n',
    )
  }
  return dir
}

test('a failing migration is ACK_ERR_STORE_MIGRATION_FAILED naming it, and leaves nothing of itself', async (t) => {
  const { name, url } = await testDatabase(t)
  const dir = migrationsDir(t, {
    '0001-ok.js': 'CREATE TABLE kept (id int)',
    '0002-bad.js': 'CREATE TABLE half (id int); SELECT * FROM no_such_table',
    'README.md': 'not a migration',
  })
  const sequelize = await connectStore(url, { logger: testLogger().log, createIfMissing: false })
  t.after(() => sequelize.close())
  const { code, message } = await failure(migrate(sequelize, { logger: testLogger().log, dir }))
  assert.deepEqual(
    { code, message },
    {
      code: 'ACK_ERR_STORE_MIGRATION_FAILED',
      message:
        `Migration 0002-bad (up) failed on database "${name}": relation "no_such_table" does not exist. ` +
        'It ran in one transaction, so nothing of it was applied; fix what PostgreSQL reports and run ' +
        '`ackstate migrate` again.',
    },
  )
  assert.deepEqual(
    {
      applied: await applied(url),
      tables: await query(url, `SELECT to_regclass('kept')::text AS kept, to_regclass('half')::text AS half`),
    },
    { applied: ['0001-ok'], tables: [{ kept: 'kept', half: null }] },
  )
})

test('a migrations directory without migrations is an error that says the install is incomplete', async (t) => {
  const { url } = await testDatabase(t)
  const dir = migrationsDir(t, {})
  const sequelize = await connectStore(url, { logger: testLogger().log, createIfMissing: false })
  t.after(() => sequelize.close())
  const { code, message } = await failure(migrate(sequelize, { logger: testLogger().log, dir }))
  assert.equal(code, 'ACK_ERR_STORE_MIGRATION_FAILED')
  assert.match(
    message,
    /^No migrations \(0001-….ts or .js\) in .*ackstate-migrations-.*The install is incomplete/,
  )
})
