import type { TestContext } from 'node:test'
import type { Sequelize } from 'sequelize'
import { createLogger } from '../../src/log.js'
import { openStore } from '../../src/store/index.js'
import { testDatabase } from './postgres.js'

/** Every migration in migrations/, in order: what a fresh database records once migrated. */
export const ALL_MIGRATIONS = [
  '0001-redis-message-backup',
  '0002-delay-message',
  '0003-dead-letter',
  '0004-processed-message',
  '0005-backup-entry-text',
]

/** A fresh database for this test, migrated as the daemon does it; the store is closed at the end. */
export async function migratedStore(
  t: TestContext,
): Promise<{ db: { name: string; url: string }; store: Sequelize }> {
  const db = await testDatabase(t)
  const settings = { databaseUrl: db.url, store: { enabled: true, migrateOnStart: true } }
  const store = (await openStore(settings, createLogger('silent')))!
  t.after(() => store.close())
  return { db, store }
}
