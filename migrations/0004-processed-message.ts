import type { Migration } from '../src/store/migrate.js'

/**
 * Messages whose effect a handler committed through `exactlyOnce()` (src/exactlyOnce.ts): the row is
 * inserted in the handler's own transaction, so it exists if and only if the effect was committed,
 * and a re-delivery (a crash between that commit and the XACK) finds it and skips the effect.
 *
 * The key is per stream and group, like the Redis deduplication keys: an entry without an `id` field
 * has its entry id as message id, and entry ids repeat across streams. A plain table (no fillfactor):
 * rows are only ever inserted, and deleted by whoever prunes them by processed_at.
 */
const UP = `
CREATE TABLE processed_message (
  stream       text        NOT NULL,
  group_name   text        NOT NULL,
  message_id   text        NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT processed_message_pkey PRIMARY KEY (stream, group_name, message_id)
);

CREATE INDEX processed_message_processed_at_idx ON processed_message (processed_at);
`

const DOWN = `DROP TABLE processed_message;`

// One multi-statement query: PostgreSQL runs it as one implicit transaction, so a failure leaves nothing.
export const up: Migration = ({ context }) => context.sequelize.query(UP)
export const down: Migration = ({ context }) => context.sequelize.query(DOWN)
