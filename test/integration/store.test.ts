import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import type { Sequelize } from 'sequelize'
import { connectStore, migrate, pendingMigrations, revert } from '../../src/store/index.js'
import { query, testDatabase, testLogger } from '../support/postgres.js'
import { ALL_MIGRATIONS } from '../support/store.js'

/** A connected store on a fresh database of this test; closed when it ends. */
async function freshStore(t: TestContext): Promise<{ sequelize: Sequelize; url: string }> {
  const { url } = await testDatabase(t)
  const sequelize = await connectStore(url, { logger: testLogger('info').log, createIfMissing: false })
  t.after(() => sequelize.close())
  return { sequelize, url }
}

/** The public schema as compact lines per table: columns, constraints, indexes, storage options. */
async function schemaOf(url: string) {
  const group = (rows: { t: string; line: string }[]) => {
    const out: Record<string, string[]> = {}
    for (const { t, line } of rows) (out[t] ??= []).push(line)
    return out
  }
  const columns = await query<{ t: string; line: string }>(
    url,
    `SELECT table_name AS t,
            concat_ws(' ', column_name, data_type, CASE is_nullable WHEN 'NO' THEN 'NOT NULL' END,
                      'DEFAULT ' || column_default) AS line
       FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position`,
  )
  const constraints = await query<{ t: string; line: string }>(
    url,
    `SELECT conrelid::regclass::text AS t, conname || ': ' || pg_get_constraintdef(oid) AS line
       FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, conname`,
  )
  const indexes = await query<{ t: string; line: string }>(
    url,
    `SELECT tablename AS t, replace(indexdef, 'public.', '') AS line
       FROM pg_indexes WHERE schemaname = 'public' ORDER BY tablename, indexname`,
  )
  const options = await query<{ t: string; line: string }>(
    url,
    `SELECT relname AS t, array_to_string(reloptions, ',') AS line
       FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' AND reloptions IS NOT NULL`,
  )
  return {
    columns: group(columns),
    constraints: group(constraints),
    indexes: group(indexes),
    options: group(options),
  }
}

const MIGRATED = {
  columns: {
    ackstate_migrations: ['name character varying NOT NULL'],
    dead_letter: [
      'id bigint NOT NULL',
      'message_id text NOT NULL',
      'stream text NOT NULL',
      'group text NOT NULL',
      'consumer text',
      'entry_id text',
      'payload text',
      "headers jsonb NOT NULL DEFAULT '{}'::jsonb",
      "fields jsonb NOT NULL DEFAULT '{}'::jsonb",
      'error jsonb NOT NULL',
      'attempts integer NOT NULL',
      'failed_at timestamp with time zone NOT NULL DEFAULT now()',
      'replayed_at timestamp with time zone',
    ],
    delay_message: [
      'message_id text NOT NULL',
      'stream text NOT NULL',
      'payload text NOT NULL',
      "headers jsonb NOT NULL DEFAULT '{}'::jsonb",
      "fields jsonb NOT NULL DEFAULT '{}'::jsonb",
      'deliver_at timestamp with time zone NOT NULL',
      "status text NOT NULL DEFAULT 'pending'::text",
      'created_at timestamp with time zone NOT NULL DEFAULT now()',
      'delivered_at timestamp with time zone',
    ],
    redis_message_backup: [
      'message_id text NOT NULL',
      'stream text NOT NULL',
      'payload text NOT NULL',
      "headers text NOT NULL DEFAULT '{}'::text",
      "fields text NOT NULL DEFAULT '{}'::text",
      "status text NOT NULL DEFAULT 'pending'::text",
      'attempts integer NOT NULL DEFAULT 0',
      'publisher_id text',
      'created_at timestamp with time zone NOT NULL DEFAULT now()',
      'sent_at timestamp with time zone',
      'acked_at timestamp with time zone',
    ],
    processed_message: [
      'stream text NOT NULL',
      'group_name text NOT NULL',
      'message_id text NOT NULL',
      'processed_at timestamp with time zone NOT NULL DEFAULT now()',
    ],
  },
  constraints: {
    ackstate_migrations: ['ackstate_migrations_pkey: PRIMARY KEY (name)'],
    dead_letter: [
      'dead_letter_attempts_check: CHECK ((attempts >= 0))',
      'dead_letter_pkey: PRIMARY KEY (id)',
    ],
    delay_message: [
      'delay_message_pkey: PRIMARY KEY (message_id)',
      "delay_message_status_check: CHECK ((status = ANY (ARRAY['pending'::text, 'delivered'::text])))",
    ],
    processed_message: ['processed_message_pkey: PRIMARY KEY (stream, group_name, message_id)'],
    redis_message_backup: [
      'redis_message_backup_attempts_check: CHECK ((attempts >= 0))',
      'redis_message_backup_pkey: PRIMARY KEY (message_id)',
      "redis_message_backup_status_check: CHECK ((status = ANY (ARRAY['pending'::text, 'sent'::text, 'acked'::text, 'dead'::text])))",
    ],
  },
  indexes: {
    ackstate_migrations: [
      'CREATE UNIQUE INDEX ackstate_migrations_pkey ON ackstate_migrations USING btree (name)',
    ],
    dead_letter: [
      'CREATE INDEX dead_letter_message_id_idx ON dead_letter USING btree (message_id)',
      'CREATE UNIQUE INDEX dead_letter_pkey ON dead_letter USING btree (id)',
      'CREATE INDEX dead_letter_unreplayed_idx ON dead_letter USING btree (stream, failed_at) WHERE (replayed_at IS NULL)',
    ],
    delay_message: [
      "CREATE INDEX delay_message_due_idx ON delay_message USING btree (deliver_at) WHERE (status = 'pending'::text)",
      'CREATE UNIQUE INDEX delay_message_pkey ON delay_message USING btree (message_id)',
    ],
    processed_message: [
      'CREATE UNIQUE INDEX processed_message_pkey ON processed_message USING btree (stream, group_name, message_id)',
      'CREATE INDEX processed_message_processed_at_idx ON processed_message USING btree (processed_at)',
    ],
    redis_message_backup: [
      "CREATE INDEX redis_message_backup_pending_idx ON redis_message_backup USING btree (created_at) WHERE (status = 'pending'::text)",
      'CREATE UNIQUE INDEX redis_message_backup_pkey ON redis_message_backup USING btree (message_id)',
    ],
  },
  options: { redis_message_backup: ['fillfactor=70'] },
}

const EMPTY = {
  columns: { ackstate_migrations: MIGRATED.columns.ackstate_migrations },
  constraints: { ackstate_migrations: MIGRATED.constraints.ackstate_migrations },
  indexes: { ackstate_migrations: MIGRATED.indexes.ackstate_migrations },
  options: {},
}

test('migrate creates the tables with their columns, constraints, indexes and fillfactor', async (t) => {
  const { sequelize, url } = await freshStore(t)
  const { log, lines } = testLogger('info')
  assert.deepEqual(await migrate(sequelize, { logger: log }), ALL_MIGRATIONS)
  assert.deepEqual(await schemaOf(url), MIGRATED)
  assert.deepEqual(
    await query(url, 'SELECT name FROM ackstate_migrations ORDER BY name'),
    ALL_MIGRATIONS.map((name) => ({ name })),
  )
  assert.deepEqual(
    lines.map((l) => ({ msg: l.msg, migration: l.migration })),
    ALL_MIGRATIONS.map((migration) => ({ msg: 'migration applied', migration })),
  )
})

test('running migrate again applies nothing and changes nothing', async (t) => {
  const { sequelize, url } = await freshStore(t)
  const logger = testLogger('info').log
  await migrate(sequelize, { logger })
  assert.deepEqual(await migrate(sequelize, { logger }), [])
  assert.deepEqual(await pendingMigrations(sequelize, { logger }), [])
  assert.deepEqual(await schemaOf(url), MIGRATED)
})

test('down reverts the last migration, then all of them, and up restores the same schema', async (t) => {
  const { sequelize, url } = await freshStore(t)
  const logger = testLogger('info').log
  await migrate(sequelize, { logger })

  // With rows in the backup: the column types change both ways without losing their values.
  await query(
    url,
    `INSERT INTO redis_message_backup (message_id, stream, payload, headers) VALUES ('m-1', 'o', '{}', '{"a":"b"}')`,
  )
  assert.deepEqual(await revert(sequelize, { logger }), ['0005-backup-entry-text'])
  const jsonb = await schemaOf(url)
  assert.ok(jsonb.columns.redis_message_backup!.includes("headers jsonb NOT NULL DEFAULT '{}'::jsonb"))
  assert.deepEqual(await query(url, 'SELECT headers FROM redis_message_backup'), [{ headers: { a: 'b' } }])
  assert.deepEqual(await migrate(sequelize, { logger }), ['0005-backup-entry-text'])
  assert.deepEqual(await query(url, 'SELECT headers FROM redis_message_backup'), [{ headers: '{"a": "b"}' }])
  await query(url, 'DELETE FROM redis_message_backup')

  assert.deepEqual(await revert(sequelize, { logger, to: '0004-processed-message' }), [
    '0005-backup-entry-text',
    '0004-processed-message',
  ])
  const afterOne = await schemaOf(url)
  assert.deepEqual(Object.keys(afterOne.columns).sort(), [
    'ackstate_migrations',
    'dead_letter',
    'delay_message',
    'redis_message_backup',
  ])
  assert.deepEqual(await pendingMigrations(sequelize, { logger }), [
    '0004-processed-message',
    '0005-backup-entry-text',
  ])

  assert.deepEqual(await revert(sequelize, { logger, to: 0 }), [
    '0003-dead-letter',
    '0002-delay-message',
    '0001-redis-message-backup',
  ])
  assert.deepEqual(await schemaOf(url), EMPTY)
  assert.deepEqual(await query(url, 'SELECT name FROM ackstate_migrations'), [])

  assert.deepEqual(await migrate(sequelize, { logger }), ALL_MIGRATIONS)
  assert.deepEqual(await schemaOf(url), MIGRATED)
})

test('the tables accept what the backup, the scheduler and the dead letters will write', async (t) => {
  const { sequelize, url } = await freshStore(t)
  await migrate(sequelize, { logger: testLogger('info').log })
  await query(
    url,
    `INSERT INTO redis_message_backup (message_id, stream, payload) VALUES ('m-1', 'orders', '{}')`,
  )
  await query(
    url,
    `INSERT INTO delay_message (message_id, stream, payload, deliver_at) VALUES ('m-1', 'orders', '{}', now())`,
  )
  await query(
    url,
    `INSERT INTO dead_letter (message_id, stream, "group", error, attempts)
     VALUES ('m-1', 'orders', 'orders', '{"code":"ACK_ERR_PERMANENT"}', 1), ('m-1', 'orders', 'orders', '{}', 2)`,
  )
  const rejected = async (sql: string) =>
    query(url, sql).then(
      () => 'accepted',
      (err: { code?: string }) => err.code,
    )
  assert.deepEqual(
    {
      duplicateBackup: await rejected(
        `INSERT INTO redis_message_backup (message_id, stream, payload) VALUES ('m-1', 'orders', '{}')`,
      ),
      unknownStatus: await rejected(`UPDATE redis_message_backup SET status = 'lost'`),
      duplicateDelay: await rejected(
        `INSERT INTO delay_message (message_id, stream, payload, deliver_at) VALUES ('m-1', 'o', '{}', now())`,
      ),
      backupDefaults: await query(url, 'SELECT status, attempts, headers, fields FROM redis_message_backup'),
      deadLetters: (await query(url, 'SELECT count(*)::int AS n FROM dead_letter'))[0],
    },
    {
      duplicateBackup: '23505',
      unknownStatus: '23514',
      duplicateDelay: '23505',
      backupDefaults: [{ status: 'pending', attempts: 0, headers: '{}', fields: '{}' }],
      deadLetters: { n: 2 },
    },
  )
})
