import { existsSync, statSync } from 'node:fs'
import path from 'node:path'
import { ConfigError } from './errors.js'

/** One configured consumer, defaults applied and the handler path made absolute. */
export interface ConsumerConfig {
  /** Unique name; names the actor (`consumer-<name>`) and the logs. */
  name: string
  /** Stream key, as any client writes it (`XADD orders * …`). */
  stream: string
  /** Consumer group; defaults to the consumer name. */
  group: string
  /** Absolute path of the handler module. */
  handler: string
  /** Worker threads of the handler's pool. */
  concurrency: number
  /** Most entries one XREADGROUP returns. */
  batchSize: number
  /**
   * Read loops of this consumer, each its own actor and blocking connection: while one batch runs in
   * the pool the next is read, deduplicated and settled. Loop 1 keeps the name; loop n is `<name>#n`.
   */
  readers: number
  /** How long one XREADGROUP blocks waiting for entries, in ms. */
  blockMs: number
  /** Per-message handler timeout in ms; the handler's AbortSignal fires then. */
  handlerTimeoutMs: number
  /** Heap limit of each worker thread, in MB. */
  maxMemoryMb: number
  /**
   * Young-generation limit of each worker thread, in MB (V8 splits it into two semi-spaces and a
   * large-object area). Left to V8, a busy thread's semi-spaces grow to 16 MB each and stay there.
   */
  maxYoungMemoryMb: number
  /** Deliveries of a failing message before it is dead-lettered. */
  maxAttempts: number
  /** Backoff before retry n: min(retryMaxMs, retryBaseMs · 2^(n-1)) ± retryJitter. */
  retryBaseMs: number
  retryMaxMs: number
  /** Fraction (0–1) of the backoff randomised, so retries of one outage do not arrive together. */
  retryJitter: number
  /** How long a completed message id is remembered for deduplication; 0 turns it off. */
  dedupeTtlMs: number
  /**
   * `json`: a payload that is missing or not valid JSON is dead-lettered before the handler runs.
   * `binary`: the payload is read byte for byte and handed to the handler as a Uint8Array.
   */
  payloadFormat: PayloadFormat
  /** A payload over this many bytes (UTF-8) is dead-lettered before the handler runs. */
  maxPayloadBytes: number
}

/** What a consumer expects in the `payload` field. */
export const PAYLOAD_FORMATS = ['text', 'json', 'binary'] as const
export type PayloadFormat = (typeof PAYLOAD_FORMATS)[number]

interface IntRule {
  min: number
  max: number
  default: number
  doc: string
  /** Any number in range, not only whole ones. */
  fraction?: boolean
}

/** The numeric consumer keys: bounds, defaults and what they mean (the README's table says the same). */
export const CONSUMER_NUMBERS: Record<
  | 'concurrency'
  | 'batchSize'
  | 'readers'
  | 'blockMs'
  | 'handlerTimeoutMs'
  | 'maxMemoryMb'
  | 'maxYoungMemoryMb'
  | 'maxAttempts'
  | 'retryBaseMs'
  | 'retryMaxMs'
  | 'retryJitter'
  | 'dedupeTtlMs'
  | 'maxPayloadBytes',
  IntRule
> = {
  concurrency: { min: 1, max: 64, default: 2, doc: 'worker threads running the handler' },
  batchSize: { min: 1, max: 10_000, default: 100, doc: 'entries per read' },
  readers: { min: 1, max: 16, default: 1, doc: 'read loops, each with a batch in flight' },
  blockMs: { min: 1, max: 60_000, default: 5_000, doc: 'XREADGROUP BLOCK time' },
  handlerTimeoutMs: { min: 1, max: 3_600_000, default: 30_000, doc: 'per-message handler timeout' },
  maxMemoryMb: { min: 16, max: 16_384, default: 512, doc: 'heap limit per worker thread' },
  maxYoungMemoryMb: {
    min: 3,
    max: 1_024,
    default: 12,
    doc: 'young-generation limit per worker thread',
  },
  maxAttempts: { min: 1, max: 1_000, default: 5, doc: 'deliveries before dead-lettering' },
  retryBaseMs: { min: 1, max: 3_600_000, default: 1_000, doc: 'first retry backoff' },
  retryMaxMs: { min: 1, max: 86_400_000, default: 60_000, doc: 'longest retry backoff' },
  retryJitter: { min: 0, max: 1, default: 0.2, doc: 'random fraction of each backoff', fraction: true },
  dedupeTtlMs: {
    min: 0,
    max: 2_592_000_000,
    default: 3_600_000,
    doc: 'how long completed ids are remembered',
  },
  // 1 MiB by default; Redis itself caps a string at 512 MB.
  maxPayloadBytes: { min: 1, max: 536_870_912, default: 1_048_576, doc: 'largest payload in bytes' },
}

const STRING_KEYS = ['name', 'stream', 'group', 'handler'] as const
const KNOWN_KEYS = new Set<string>([...STRING_KEYS, 'payloadFormat', ...Object.keys(CONSUMER_NUMBERS)])
const NAME_PATTERN = /^[A-Za-z0-9_.:-]+$/

/**
 * Validates the `consumers` list of the config file and applies defaults. A consumer with `readers`
 * n > 1 comes back as n entries on the same stream, group and handler (so one pool, with room for a
 * batch of each): `<name>`, `<name>#2` … `<name>#n` (`#` is not allowed in a configured name).
 */
export function checkConsumers(value: unknown, baseDir: string, file: string): ConsumerConfig[] {
  return validate(value, baseDir, file).flatMap((c) =>
    Array.from({ length: c.readers }, (_, i) => (i === 0 ? c : { ...c, name: `${c.name}#${i + 1}` })),
  )
}

function validate(value: unknown, baseDir: string, file: string): ConsumerConfig[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new ConfigError(
      'ACK_ERR_CONFIG',
      `consumers in ${file} must list at least one consumer, e.g. ` +
        `[{ "name": "orders", "stream": "orders", "handler": "./handlers/orders.js" }].`,
    )
  }
  const seen = new Set<string>()
  return value.map((raw: unknown, i) => {
    const at = `consumers[${i}]`
    const fail = (what: string): never => {
      throw new ConfigError('ACK_ERR_CONFIG', `${what}. Fix it in ${file}.`)
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(`${at} must be an object`)
    const entry = raw as Record<string, unknown>

    for (const key of Object.keys(entry)) {
      if (!KNOWN_KEYS.has(key)) {
        fail(`${at}.${key} is not a consumer key (known: ${[...KNOWN_KEYS].join(', ')})`)
      }
    }
    for (const key of STRING_KEYS) {
      const v = entry[key]
      if (v === undefined && key === 'group') continue
      if (typeof v !== 'string' || v.trim() === '')
        fail(`${at}.${key} must be a non-empty string, got ${show(v)}`)
    }
    const name = entry.name as string
    if (!NAME_PATTERN.test(name)) fail(`${at}.name "${name}" may only hold letters, digits and _ . : -`)
    if (seen.has(name)) fail(`${at}.name "${name}" is used twice; consumer names must be unique`)
    seen.add(name)

    const stream = entry.stream as string
    // Derived keys wrap the stream in a hash tag ({orders}:dlq); braces in the name would break that.
    if (/[{}\s]/.test(stream)) fail(`${at}.stream "${stream}" must not contain braces or spaces`)

    const numbers = {} as Record<keyof typeof CONSUMER_NUMBERS, number>
    for (const [key, rule] of Object.entries(CONSUMER_NUMBERS) as [
      keyof typeof CONSUMER_NUMBERS,
      IntRule,
    ][]) {
      const v = entry[key]
      if (v === undefined) {
        numbers[key] = rule.default
        continue
      }
      if (typeof v !== 'number' || !(rule.fraction || Number.isInteger(v)) || v < rule.min || v > rule.max) {
        const kind = rule.fraction ? 'a number' : 'a whole number'
        fail(`${at}.${key} (${rule.doc}) must be ${kind} from ${rule.min} to ${rule.max}, got ${show(v)}`)
      }
      numbers[key] = v as number
    }

    if (numbers.retryMaxMs < numbers.retryBaseMs) {
      fail(`${at}.retryMaxMs (${numbers.retryMaxMs}) must not be below retryBaseMs (${numbers.retryBaseMs})`)
    }

    const payloadFormat = entry.payloadFormat ?? 'text'
    if (!PAYLOAD_FORMATS.includes(payloadFormat as PayloadFormat)) {
      fail(`${at}.payloadFormat must be one of ${PAYLOAD_FORMATS.join(', ')}, got ${show(payloadFormat)}`)
    }

    const handler = path.resolve(baseDir, entry.handler as string)
    if (!existsSync(handler) || !statSync(handler).isFile()) {
      throw new ConfigError(
        'ACK_ERR_HANDLER_NOT_FOUND',
        `${at}.handler: module ${handler} does not exist. The path is relative to ${file}; ` +
          `point it at a .js/.mjs/.cjs file that exports the handler function.`,
      )
    }

    return {
      name,
      stream,
      group: (entry.group as string | undefined) ?? name,
      handler,
      ...numbers,
      payloadFormat: payloadFormat as PayloadFormat,
    }
  })
}

function show(v: unknown): string {
  return v === undefined ? 'nothing' : JSON.stringify(v)
}
