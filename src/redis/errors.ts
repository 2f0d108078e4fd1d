import { BROKER_UNAVAILABLE, GROUP_MISSING } from '../../machines/types.js'
import { BrokerError } from '../errors.js'

/** Reply prefixes and error names that mean "the broker is not usable right now; try again later". */
const TRANSIENT = [
  'LOADING',
  'READONLY',
  'MASTERDOWN',
  'CLUSTERDOWN',
  'TRYAGAIN',
  'BUSY',
  'NOREPLICAS',
  'Connection is closed',
  "Stream isn't writeable",
]
const TRANSIENT_NAMES = new Set(['MaxRetriesPerRequestError', 'ClusterAllFailedError'])
const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTCONN',
  'EHOSTUNREACH',
])

/**
 * Turns an ioredis failure into a BrokerError whose code the machines branch on:
 * ACK_ERR_REDIS_UNAVAILABLE (wait and retry), ACK_ERR_GROUP_MISSING (recreate the group) or
 * ACK_ERR_REDIS_COMMAND (a real error: the actor crashes and the supervisor decides).
 */
export function classify(err: unknown, what: string): BrokerError {
  if (err instanceof BrokerError) return err
  const e = err as { name?: string; message?: string; code?: string }
  const message = e?.message ?? String(err)
  if (message.startsWith('NOGROUP')) {
    return new BrokerError(GROUP_MISSING, `${what}: the consumer group or stream is gone (${message})`, {
      cause: err,
    })
  }
  if (
    TRANSIENT_NAMES.has(e?.name ?? '') ||
    TRANSIENT_CODES.has(e?.code ?? '') ||
    TRANSIENT.some((p) => message.startsWith(p))
  ) {
    return new BrokerError(BROKER_UNAVAILABLE, `${what}: Redis is unavailable (${message})`, { cause: err })
  }
  return new BrokerError('ACK_ERR_REDIS_COMMAND', `${what} failed: ${message}`, { cause: err })
}
