import { fromPromise } from 'xstate'
import type { DelayInput, ReleaseResult } from '../../machines/types.js'
import { entryFields } from '../redis/entries.js'
import { addEntries } from '../redis/addEntries.js'
import type { Resources } from '../resources.js'
import { insertBackups } from '../store/backup.js'
import { lockDue, markDelivered, nextDueInMs } from '../store/delays.js'

/** Header a released message carries: when it was due, so lateness can be measured downstream. */
export const DELIVER_AT_HEADER = 'deliver-at'

/**
 * One release pass, in one transaction: lock the due rows (SKIP LOCKED: several daemons share the
 * work), back them up as sent messages owned by this daemon, XADD them, mark them delivered, commit.
 * The XADD happens before the commit: a crash in between leaves the rows pending, so they are sent
 * again — a duplicate that deduplication absorbs, never a loss. The backup rows are committed on
 * their own, before the XADD: a consumer may ack a released message before this transaction
 * commits, and its confirmation must find the row.
 */
export const releaseDue = (res: Resources) =>
  fromPromise<ReleaseResult, DelayInput>(async ({ input }) => {
    const store = res.store
    if (!store) return { released: 0, nextDueInMs: null, now: Date.now() }
    const released = await store.transaction(async (transaction) => {
      const rows = await lockDue(store, input.batchSize, transaction)
      if (rows.length === 0) return 0
      const messages = rows.map((r) => ({
        messageId: r.message_id,
        stream: r.stream,
        payload: r.payload,
        headers: { ...r.headers, [DELIVER_AT_HEADER]: new Date(r.deliver_at).toISOString() },
        fields: r.fields,
      }))
      await insertBackups(store, messages, input.consumer, undefined, 'sent')
      // One round trip (one per slot on a Cluster: the messages span streams).
      const replies = await addEntries(
        res.redis,
        messages,
        (m) => m.stream,
        (m) => entryFields({ ...m, id: m.messageId }),
      )
      const failed = replies.find(([err]) => err)?.[0]
      if (failed) throw failed
      const ids = messages.map((m) => m.messageId)
      await markDelivered(store, ids, transaction)
      return rows.length
    })
    return { released, nextDueInMs: await nextDueInMs(store), now: Date.now() }
  })
