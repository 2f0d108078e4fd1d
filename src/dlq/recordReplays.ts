import { RuntimeError } from '../errors.js'
import { createLogger } from '../log.js'
import { markReplayed, rearmBackups } from '../store/deadLetters.js'
import { connectStore, loadStoreSettings } from '../store/index.js'
import type { DlqOutput } from './output.js'
import type { ReadLetter } from './read.js'
import type { DlqActionResult } from './replay.js'

/**
 * Sets `replayed_at` on the `dead_letter` rows of the letters replayed, when the store is enabled,
 * and re-arms their backup rows (dead → sent, attempts 0: see rearmBackups).
 * The `{stream}:dlq` stream is the source of truth (it exists with or without PostgreSQL, and holds
 * letters whose row could not be written), so a store that cannot be reached only costs this note:
 * a warning on stderr, and the replay stands. Resolves with the rows updated (null: not recorded).
 */
export async function recordReplays(
  letters: ReadLetter[],
  results: DlqActionResult[],
  configFile: string | undefined,
  out: DlqOutput,
): Promise<number | null> {
  const replayed = letters.filter((_, i) => results[i]?.status === 'replayed')
  if (replayed.length === 0) return 0
  const settings = loadStoreSettings({ file: configFile })
  if (!settings.store.enabled) return null
  try {
    const store = await connectStore(settings.databaseUrl, {
      logger: createLogger('silent'),
      createIfMissing: false,
    })
    try {
      const keys = replayed.map(({ letter }) => ({
        stream: letter.stream,
        group: letter.group,
        entryId: letter.entryId,
      }))
      const rows = await markReplayed(store, keys)
      await rearmBackups(
        store,
        replayed.map(({ letter }) => letter.id),
      )
      return rows
    } finally {
      await store.close()
    }
  } catch (err) {
    const what = err instanceof RuntimeError ? `${err.code}: ${err.message}` : String(err)
    out.stderr.write(
      `ackstate: warning: replayed_at and the backup rows not updated in PostgreSQL (${what}). The messages were replayed; ` +
        'the dead-letter stream is the source of truth.\n',
    )
    return null
  }
}
