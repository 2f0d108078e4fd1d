import type { Migration } from '../src/store/migrate.js'

/**
 * Messages to publish later: the delay scheduler XADDs a row once deliver_at is due and marks it
 * delivered. Several instances share the table (`FOR UPDATE SKIP LOCKED`, ARCHITECTURE invariant 8).
 *
 * The partial index holds only the rows still to deliver, ordered by due time: the scheduler's scan
 * (`WHERE status = 'pending' AND deliver_at <= now() ORDER BY deliver_at LIMIT n`) reads its head.
 */
const UP = `
CREATE TABLE delay_message (
  message_id   text        NOT NULL,
  stream       text        NOT NULL,
  payload      text        NOT NULL,
  headers      jsonb       NOT NULL DEFAULT '{}'::jsonb,
  fields       jsonb       NOT NULL DEFAULT '{}'::jsonb,
  deliver_at   timestamptz NOT NULL,
  status       text        NOT NULL DEFAULT 'pending',
  created_at   timestamptz NOT NULL DEFAULT now(),
  delivered_at timestamptz,
  CONSTRAINT delay_message_pkey PRIMARY KEY (message_id),
  CONSTRAINT delay_message_status_check CHECK (status IN ('pending', 'delivered'))
);

CREATE INDEX delay_message_due_idx
  ON delay_message (deliver_at)
  WHERE status = 'pending';
`

const DOWN = `DROP TABLE delay_message;`

// One multi-statement query: PostgreSQL runs it as one implicit transaction, so a failure leaves nothing.
export const up: Migration = ({ context }) => context.sequelize.query(UP)
export const down: Migration = ({ context }) => context.sequelize.query(DOWN)
