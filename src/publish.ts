import type { Redis } from 'ioredis'
import { PublishError } from './errors.js'
import { uuidv7 } from './ids.js'
import { createLogger, type Logger } from './log.js'
import { connectRedis } from './redis/connect.js'
import { classify } from './redis/errors.js'

/** A message to publish, in the wire format of ARCHITECTURE.md. */
export interface PublishMessage {
  stream: string
  /** The body: a string as it is, anything else JSON-encoded. */
  payload: unknown
  /** Producer-assigned message id; a UUIDv7 when omitted. Used for deduplication. */
  id?: string
  /** String headers (content-type, traceparent…); `published-at` is added. */
  headers?: Record<string, string>
  /** Extra fields, passed through to the handler untouched. */
  fields?: Record<string, string>
}

/** Options of one publish; the PostgreSQL backup will add `transaction` and `delayMs` here. */
export type PublishOptions = Record<string, never>

export interface PublishResult {
  id: string
  stream: string
  /** Entry id Redis assigned. */
  entryId: string
}

export interface PublisherOptions {
  /** An ioredis connection to use (not closed by close()), or… */
  redis?: Redis
  /** …a URL to open one; defaults to REDIS_URL, then redis://127.0.0.1:6379. */
  redisUrl?: string
  logger?: Logger
}

const RESERVED = new Set(['id', 'payload', 'headers'])

/** Checks a message and returns the flat XADD field list. Throws PublishError saying what to fix. */
export function encodeMessage(message: PublishMessage, now = new Date()): { id: string; fields: string[] } {
  const fail = (what: string): never => {
    throw new PublishError('ACK_ERR_PUBLISH_INVALID', `Cannot publish: ${what}.`)
  }
  if (typeof message !== 'object' || message === null) fail('the message must be an object')
  if (typeof message.stream !== 'string' || message.stream === '') fail('`stream` must be a non-empty string')
  if (message.payload === undefined) fail('`payload` is missing; pass a string or a JSON-serialisable value')
  const id = message.id ?? uuidv7(now.getTime())
  if (typeof id !== 'string' || id === '') fail('`id` must be a non-empty string when given')
  const payload = typeof message.payload === 'string' ? message.payload : JSON.stringify(message.payload)
  if (typeof payload !== 'string') fail('`payload` cannot be JSON-encoded (a function or a symbol?)')

  const headers: Record<string, string> = { 'published-at': now.toISOString(), ...message.headers }
  for (const [k, v] of Object.entries(headers)) {
    if (typeof v !== 'string') fail(`header "${k}" must be a string, got ${typeof v}`)
  }
  const fields = ['id', id, 'payload', payload, 'headers', JSON.stringify(headers)]
  for (const [k, v] of Object.entries(message.fields ?? {})) {
    if (RESERVED.has(k)) fail(`field "${k}" is reserved; set it through the message's own \`${k}\``)
    if (typeof v !== 'string') fail(`field "${k}" must be a string, got ${typeof v}`)
    fields.push(k, v)
  }
  return { id, fields }
}

/**
 * Publishes messages to Redis Streams in the entry format consumers expect. A publish resolves
 * once Redis accepted the entry, and rejects with a coded error when it did not (Redis down past
 * the retries, OOM under noeviction): never a silent drop.
 */
export class Publisher {
  private readonly redis: Redis
  private readonly owned: boolean

  constructor(options: PublisherOptions = {}) {
    if (options.redis) {
      this.redis = options.redis
      this.owned = false
    } else {
      const url = options.redisUrl ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
      this.redis = connectRedis(url, 'publisher', options.logger ?? createLogger('warn'))
      this.owned = true
    }
  }

  async publish(message: PublishMessage, _options: PublishOptions = {}): Promise<PublishResult> {
    const [result] = await this.publishMany([message])
    return result!
  }

  /** One pipelined round trip for all messages; rejects if any was refused, naming how many. */
  async publishMany(messages: PublishMessage[], _options: PublishOptions = {}): Promise<PublishResult[]> {
    if (!Array.isArray(messages)) {
      throw new PublishError(
        'ACK_ERR_PUBLISH_INVALID',
        'Cannot publish: publishMany() takes an array of messages.',
      )
    }
    const now = new Date()
    const encoded = messages.map((m) => encodeMessage(m, now))
    if (encoded.length === 0) return []
    const pipeline = this.redis.pipeline()
    encoded.forEach((e, i) => pipeline.xadd(messages[i]!.stream, '*', ...e.fields))
    let replies: [Error | null, unknown][] | null
    try {
      replies = await pipeline.exec()
    } catch (err) {
      throw classify(err, 'XADD')
    }
    const failures = (replies ?? []).filter(([err]) => err)
    if (!replies || failures.length > 0) {
      const first = failures[0]?.[0] ?? new Error('no reply from Redis')
      const err = classify(
        first,
        `XADD (${failures.length || messages.length} of ${messages.length} refused)`,
      )
      throw err
    }
    return replies.map(([, entryId], i) => ({
      id: encoded[i]!.id,
      stream: messages[i]!.stream,
      entryId: entryId as string,
    }))
  }

  /** Closes the connection if this publisher opened it. */
  async close(): Promise<void> {
    if (this.owned) await this.redis.quit().catch(() => this.redis.disconnect())
  }
}

export function createPublisher(options: PublisherOptions = {}): Publisher {
  return new Publisher(options)
}
