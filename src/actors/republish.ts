import { QueryTypes } from 'sequelize'
import { fromPromise } from 'xstate'
import type { RepublishInput, RepublishResult } from '../../machines/types.js'
import { entryFields } from '../redis/entries.js'
import { heartbeatKey } from '../redis/keys.js'
import { pipelineBySlot } from '../redis/pipelineBySlot.js'
import type { Resources } from '../resources.js'

interface OrphanRow {
  message_id: string
  stream: string
  payload: string
  headers: Record<string, string>
  fields: Record<string, string>
  attempts: number
}

/** Most distinct owners checked per pass; the rest wait for the next one. */
const OWNER_LIMIT = 1_000

/**
 * One pass: find which publishers of old pending rows are still alive (their heartbeat key), lock a
 * batch of rows that are orphaned (owner dead or none) or stale (pending past staleAfterMs), XADD
 * them, and only then mark them sent under this daemon's name, in the same transaction. A re-sent
 * message carries its recorded attempts in a header, so maxAttempts holds across the loss.
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
        `SELECT message_id, stream, payload, headers, fields, attempts FROM redis_message_backup
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

      // One pipeline per slot on a Cluster (the rows span streams).
      const replies = await pipelineBySlot(
        res.redis,
        rows,
        (row) => row.stream,
        (pipeline, row) => {
          const message = {
            id: row.message_id,
            payload: row.payload,
            headers: row.headers,
            fields: row.fields,
          }
          pipeline.xadd(row.stream, '*', ...entryFields({ ...message, priorAttempts: row.attempts }))
        },
      )
      const failed = replies.flat().find(([err]) => err)?.[0]
      // Rolling back leaves every row pending for the next pass; entries already added are duplicates
      // that deduplication absorbs.
      if (failed) throw failed

      await store.query(
        `UPDATE redis_message_backup SET status = 'sent', sent_at = now(), publisher_id = $2
         WHERE message_id = ANY($1)`,
        { bind: [rows.map((r) => r.message_id), input.consumer], transaction, type: QueryTypes.UPDATE },
      )
      res.log.warn(
        { count: rows.length, actor: 'republisher' },
        're-sent backed-up messages that never reached redis',
      )
      return { resent: rows.length }
    })
  })
