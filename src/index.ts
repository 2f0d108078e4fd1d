/**
 * The library surface for other Node services: publishing, handler types, the permanent error, and
 * `exactlyOnce()` for handlers that write to PostgreSQL.
 */
export { createPublisher, Publisher, encodeMessage } from './publish.js'
export type { PublishMessage, PublishOptions, PublishResult, PublisherOptions } from './publish.js'
export {
  PermanentError,
  RuntimeError,
  ConfigError,
  HandlerError,
  BrokerError,
  PublishError,
  StoreError,
} from './errors.js'
export type { ErrorCode } from './errors.js'
export type { HandlerMessage, HandlerContext, HandlerFn } from './pool/protocol.js'
export { loadConfig } from './config.js'
export type { Config, ConsumerConfig } from './config.js'
export type { RedisMode, RedisTopology } from './redisConfig.js'
export { uuidv7 } from './ids.js'
export { exactlyOnce } from './exactlyOnce.js'
export type {
  EffectTransaction,
  ExactlyOnceMessage,
  ExactlyOnceOptions,
  ExactlyOnceResult,
} from './exactlyOnce.js'
