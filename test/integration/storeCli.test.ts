import assert from 'node:assert/strict'
import path from 'node:path'
import { test } from 'node:test'
import { FIXTURES, runCli, writeConfig } from '../support/daemon.js'
import { databaseExists, query, testDatabase } from '../support/postgres.js'
import { ALL_MIGRATIONS } from '../support/store.js'

test('`ackstate migrate` creates the local database, applies every migration, prints them and exits 0', async (t) => {
  const { name, url } = await testDatabase(t, { create: false })

  const first = runCli(t, ['migrate'], { DATABASE_URL: url })
  assert.equal((await first.exited).code, 0, first.stderr())
  assert.equal(first.stderr(), '')
  assert.deepEqual(
    first.logs.map((l) => l.msg ?? l),
    [
      'created the missing database',
      ...ALL_MIGRATIONS.map(() => 'migration applied'),
      { database: url, applied: ALL_MIGRATIONS },
    ],
  )
  assert.equal(await databaseExists(name), true)

  const again = runCli(t, ['migrate'], { DATABASE_URL: url })
  assert.equal((await again.exited).code, 0, again.stderr())
  assert.deepEqual(again.logs, [{ database: url, applied: [] }])
  assert.deepEqual(
    (await query<{ name: string }>(url, 'SELECT name FROM ackstate_migrations ORDER BY name')).map(
      (r) => r.name,
    ),
    ALL_MIGRATIONS,
  )
})

test('`ackstate migrate --config FILE` takes databaseUrl and the log level from the file', async (t) => {
  const { url } = await testDatabase(t)
  const file = writeConfig(t, {
    databaseUrl: url,
    logLevel: 'warn',
    consumers: [{ name: 'orders', stream: 'orders', handler: path.join(FIXTURES, 'ok.mjs') }],
  })
  const cli = runCli(t, ['migrate', '--config', file], { ACKSTATE_STORE_ENABLED: 'true' })
  assert.equal((await cli.exited).code, 0, cli.stderr())
  assert.deepEqual(cli.logs, [{ database: url, applied: ALL_MIGRATIONS }])
})

test('`ackstate migrate` on a refused connection prints one line with the code and the redacted URL, exit 1', async (t) => {
  const cli = runCli(t, ['migrate'], { DATABASE_URL: 'postgres://app:s3cret@127.0.0.1:1/ackstate' })
  assert.equal((await cli.exited).code, 1)
  const lines = cli.stderr().trim().split('\n')
  assert.equal(lines.length, 1, cli.stderr())
  assert.match(
    lines[0]!,
    /^ackstate: ACK_ERR_STORE_UNAVAILABLE: PostgreSQL at postgres:\/\/app:\*\*\*@127\.0\.0\.1:1\/ackstate refused the connection: .* Check DATABASE_URL/,
  )
  assert.doesNotMatch(cli.stderr() + JSON.stringify(cli.logs), /s3cret/)
})

test('`ackstate migrate` with the store disabled does nothing and exits 0', async (t) => {
  const cli = runCli(t, ['migrate'], {
    DATABASE_URL: 'postgres://app@127.0.0.1:1/none',
    ACKSTATE_STORE_ENABLED: 'false',
  })
  assert.equal((await cli.exited).code, 0, cli.stderr())
  assert.deepEqual(
    cli.logs.map((l) => l.msg ?? l),
    ['store disabled (store.enabled=false); nothing to migrate', { applied: [], disabled: true }],
  )
})

test('`ackstate migrate` rejects a store flag that is not true or false, naming the key', async (t) => {
  const cli = runCli(t, ['migrate'], { ACKSTATE_MIGRATE_ON_START: 'yes' })
  assert.equal((await cli.exited).code, 1)
  assert.equal(
    cli.stderr(),
    'ackstate: ACK_ERR_CONFIG: Invalid environment (no config file given): store.migrateOnStart: ' +
      'must be true or false: value was "yes"\n',
  )
})

test('`ackstate help` lists the migrate command', async (t) => {
  const cli = runCli(t, ['help'])
  assert.equal((await cli.exited).code, 0)
  assert.ok(
    cli.logs.some((l) => typeof l.raw === 'string' && l.raw.startsWith('  ackstate migrate [--config FILE]')),
  )
})
