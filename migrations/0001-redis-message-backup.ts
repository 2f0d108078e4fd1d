import type { Migration } from '../src/store/migrate.js'

/**
 * The publish-side backup (ARCHITECTURE invariants 2 and 3): a row is committed before its XADD, so a
 * message Redis never got (or lost) is re-sent by the republisher.
 *
 * - message_id is the primary key: the uniqueness the publisher needs, and the one index every
 *   confirmation (`UPDATE … WHERE message_id = ANY($1)`) uses, with no surrogate key to maintain.
 * - publisher_id names the instance that inserted the row; the republisher re-sends pending rows whose
 *   publisher's heartbeat expired, so the publish path needs no per-message "sent" UPDATE.
 * - fields holds the entry's extra fields, so a re-send is the same entry.
 * - fillfactor 70 leaves room on each page for the status UPDATEs (cost notes: +50% measured).
 * - The partial index holds only pending rows, the ones the republisher scans oldest first. It names
 *   status in its predicate, so a status change is not a HOT update; the index stays small instead.
 */
const UP = `
CREATE TABLE redis_message_backup (
  message_id   text        NOT NULL,
  stream       text        NOT NULL,
  payload      text        NOT NULL,
  headers      jsonb       NOT NULL DEFAULT '{}'::jsonb,
  fields       jsonb       NOT NULL DEFAULT '{}'::jsonb,
  status       text        NOT NULL DEFAULT 'pending',
  attempts     integer     NOT NULL DEFAULT 0,
  publisher_id text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  sent_at      timestamptz,
  acked_at     timestamptz,
  CONSTRAINT redis_message_backup_pkey PRIMARY KEY (message_id),
  CONSTRAINT redis_message_backup_status_check CHECK (status IN ('pending', 'sent', 'acked', 'dead')),
  CONSTRAINT redis_message_backup_attempts_check CHECK (attempts >= 0)
) WITH (fillfactor = 70);

CREATE INDEX redis_message_backup_pending_idx
  ON redis_message_backup (created_at)
  WHERE status = 'pending';
`

const DOWN = `DROP TABLE redis_message_backup;`

// One multi-statement query: PostgreSQL runs it as one implicit transaction, so a failure leaves nothing.
export const up: Migration = ({ context }) => context.sequelize.query(UP)
export const down: Migration = ({ context }) => context.sequelize.query(DOWN)
