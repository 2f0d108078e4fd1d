import type { Migration } from '../src/store/migrate.js'

/**
 * Messages that failed for good, kept for inspection and replay. The columns mirror the `{stream}:dlq`
 * entry (src/actors/deadLetter.ts): `error` is the same `{ name, code, message }` JSON as `dlq.error`.
 *
 * A message can die, be replayed and die again, so message_id is not unique here; rows get their own
 * key. The indexes serve the two lookups: one message's history, and a stream's letters not yet
 * replayed, oldest first.
 */
const UP = `
CREATE TABLE dead_letter (
  id          bigint      GENERATED ALWAYS AS IDENTITY,
  message_id  text        NOT NULL,
  stream      text        NOT NULL,
  "group"     text        NOT NULL,
  consumer    text,
  entry_id    text,
  payload     text,
  headers     jsonb       NOT NULL DEFAULT '{}'::jsonb,
  fields      jsonb       NOT NULL DEFAULT '{}'::jsonb,
  error       jsonb       NOT NULL,
  attempts    integer     NOT NULL,
  failed_at   timestamptz NOT NULL DEFAULT now(),
  replayed_at timestamptz,
  CONSTRAINT dead_letter_pkey PRIMARY KEY (id),
  CONSTRAINT dead_letter_attempts_check CHECK (attempts >= 0)
);

CREATE INDEX dead_letter_message_id_idx ON dead_letter (message_id);

CREATE INDEX dead_letter_unreplayed_idx
  ON dead_letter (stream, failed_at)
  WHERE replayed_at IS NULL;
`

const DOWN = `DROP TABLE dead_letter;`

// One multi-statement query: PostgreSQL runs it as one implicit transaction, so a failure leaves nothing.
export const up: Migration = ({ context }) => context.sequelize.query(UP)
export const down: Migration = ({ context }) => context.sequelize.query(DOWN)
