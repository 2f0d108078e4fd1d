import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))

function positiveInt(raw: string | undefined, fallback: number): number {
  const n = Number(raw)
  return Number.isInteger(n) && n > 0 ? n : fallback
}

/**
 * How much to run, from the environment (scripts/chaos.ts sets it from `--runs N --seed S`):
 * CHAOS_RUNS injections of each fault (1: the short CI version), CHAOS_SEED for the random kill
 * points, victims and waits (printed in every result, so a failing run replays), and CHAOS_OUT, the
 * directory of the records (publishes, invocations, daemon logs) and of results.jsonl.
 */
export const settings = {
  runs: positiveInt(process.env.CHAOS_RUNS, 1),
  seed:
    process.env.CHAOS_SEED !== undefined && process.env.CHAOS_SEED !== ''
      ? Number(process.env.CHAOS_SEED) >>> 0
      : Date.now() % 1_000_000,
  out: process.env.CHAOS_OUT ?? path.join(ROOT, 'test-results', 'chaos', 'adhoc'),
}

export const resultsFile = () => path.join(settings.out, 'results.jsonl')
