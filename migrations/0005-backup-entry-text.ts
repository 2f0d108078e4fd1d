import type { Migration } from '../src/store/migrate.js'

/**
 * The backup keeps headers and fields as the JSON text the stream entry carries, not jsonb: every
 * publish batch stores them and almost nothing reads them back (a re-send, a recovery), so the jsonb
 * parse on insert was pure cost — about a fifth of the INSERT's server CPU in the publish benchmark.
 * A re-send now writes the very text that was published. The publisher writes the text it made
 * with JSON.stringify, so it is valid JSON by construction; readers that want an object cast it
 * (`headers::jsonb`).
 *
 * Rewrites the table (ALTER … TYPE): run it while the backlog is small.
 */
const UP = `
ALTER TABLE redis_message_backup
  ALTER COLUMN headers DROP DEFAULT,
  ALTER COLUMN fields DROP DEFAULT,
  ALTER COLUMN headers TYPE text USING headers::text,
  ALTER COLUMN fields TYPE text USING fields::text,
  ALTER COLUMN headers SET DEFAULT '{}',
  ALTER COLUMN fields SET DEFAULT '{}';
`

const DOWN = `
ALTER TABLE redis_message_backup
  ALTER COLUMN headers DROP DEFAULT,
  ALTER COLUMN fields DROP DEFAULT,
  ALTER COLUMN headers TYPE jsonb USING headers::jsonb,
  ALTER COLUMN fields TYPE jsonb USING fields::jsonb,
  ALTER COLUMN headers SET DEFAULT '{}'::jsonb,
  ALTER COLUMN fields SET DEFAULT '{}'::jsonb;
`

// One multi-statement query: PostgreSQL runs it as one implicit transaction, so a failure leaves nothing.
export const up: Migration = ({ context }) => context.sequelize.query(UP)
export const down: Migration = ({ context }) => context.sequelize.query(DOWN)
