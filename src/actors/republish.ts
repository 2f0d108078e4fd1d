import { QueryTypes } from 'sequelize'
import { fromPromise } from 'xstate'
import type { RepublishInput, RepublishResult } from '../../machines/types.js'
import { heartbeatKey } from '../redis/keys.js'
import { addEntries } from '../redis/addEntries.js'
import { presentInStreams } from '../recovery/presence.js'
import type { Resources } from '../resources.js'
import { resendFields, type StoredRow } from '../store/backup.js'

interface OrphanRow extends StoredRow {
  stream: string
  publisher_id: string | null
  created_at: Date
}

/** Most distinct owners checked per pass; the rest wait for the next one. */
const OWNER_LIMIT = 1_000

/**
 * One pass: find which publishers of old pending rows are still alive (their heartbeat key), lock a
 * batch of rows that are orphaned (owner dead or none) or stale (pending past staleAfterMs), XADD
 * the ones Redis lacks, and only then mark them all sent under this daemon's name, in the same
 * transaction. A publisher with a heartbeat leaves its rows pending once sent (no per-batch UPDATE
 * on the publish path), so a row whose owner died may well be in its stream: rows with an owner are
 * looked up there first (presentInStreams), and only the absent ones are sent. A disowned row (no
 * owner) is one Redis refused, sent without looking. A re-sent message carries its recorded attempts
 * in a header, so maxAttempts holds across the loss.
 */
export const republish = (res: Resources) =>
  fromPromise<RepublishResult, RepublishInput>(async ({ input }) => {
    const store = res.store
    if (!store || input.batchSize <= 0) return { resent: 0 }
    const owners = await store.query<{ publisher_id: string }>(
      `SELECT DISTINCT publisher_id FROM redis_message_backup
       WHERE status = 'pending' AND publisher_id IS NOT NULL
         AND created_at < now() - make_interval(secs => $1::double precision / 1000)
       LIMIT ${OWNER_LIMIT}`,
      { bind: [input.republishAfterMs], type: QueryTypes.SELECT },
    )
    // A positive list of owners checked and found dead: a row whose owner was not checked (it grew
    // old enough only after the query above) waits for the next pass instead of being taken.
    const dead: string[] = []
    for (const { publisher_id: owner } of owners) {
      if ((await res.redis.exists(heartbeatKey(owner))) === 0) dead.push(owner)
    }

    return store.transaction(async (transaction) => {
      const rows = await store.query<OrphanRow>(
        `SELECT message_id, stream, payload, headers::jsonb AS headers, fields::jsonb AS fields, attempts, publisher_id, created_at
         FROM redis_message_backup
         WHERE status = 'pending'
           AND created_at < now() - make_interval(secs => $1::double precision / 1000)
           AND (publisher_id IS NULL OR publisher_id = ANY($2::text[])
                OR created_at < now() - make_interval(secs => $3::double precision / 1000))
         ORDER BY created_at
         LIMIT $4
         FOR UPDATE SKIP LOCKED`,
        {
          bind: [input.republishAfterMs, dead, input.staleAfterMs, input.batchSize],
          transaction,
          type: QueryTypes.SELECT,
        },
      )
      if (rows.length === 0) return { resent: 0 }

      const owned = rows.filter((r) => r.publisher_id !== null)
      const present = owned.length > 0 ? await presentInStreams(res.redis, owned) : new Set<string>()
      const absent = rows.filter((r) => !present.has(r.message_id))
      // One round trip (one per slot on a Cluster: the rows span streams).
      const replies = await addEntries(res.redis, absent, (row) => row.stream, resendFields)
      const failed = replies.find(([err]) => err)?.[0]
      // Rolling back leaves every row pending for the next pass; entries already added are duplicates
      // that deduplication absorbs.
      if (failed) throw failed

      await store.query(
        `UPDATE redis_message_backup SET status = 'sent', sent_at = now(), publisher_id = $2
         WHERE message_id = ANY($1)`,
        { bind: [rows.map((r) => r.message_id), input.consumer], transaction, type: QueryTypes.UPDATE },
      )
      if (absent.length > 0)
        res.log.warn(
          { count: absent.length, actor: 'republisher' },
          're-sent backed-up messages that never reached redis',
        )
      if (present.size > 0)
        res.log.info(
          { count: present.size, actor: 'republisher' },
          'backed-up messages of a gone publisher found in their streams; marked sent',
        )
      return { resent: absent.length }
    })
  })
