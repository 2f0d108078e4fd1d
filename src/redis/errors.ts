import { BROKER_FULL, BROKER_UNAVAILABLE, GROUP_MISSING } from '../../machines/types.js'
import { BrokerError } from '../errors.js'

/**
 * Reply prefixes and error messages that mean "the broker is not usable right now; try again later":
 * a server loading or demoted to a replica (READONLY, mid-failover), a Cluster without a master for a
 * slot (CLUSTERDOWN) or moving one (TRYAGAIN, and MOVED/ASK should one escape ioredis), and the
 * client-side ends of a lost connection (ioredis's own messages, and the Cluster's once its
 * redirections or startup nodes run out).
 */
const TRANSIENT = [
  'LOADING',
  'READONLY',
  'MASTERDOWN',
  'CLUSTERDOWN',
  'TRYAGAIN',
  'MOVED ',
  'ASK ',
  'BUSY',
  'NOREPLICAS',
  'UNBLOCKED',
  'Connection is closed',
  "Stream isn't writeable",
  'Command timed out',
  'Socket timeout',
  'Too many Cluster redirections',
  'None of startup nodes is available',
  'Cluster is disconnected',
  'Cluster is ended',
  "Cluster isn't ready",
  'Node is disconnected',
  'Failed to refresh slots cache',
  'Connection is discarded',
  'Connection is aborted',
]
/** An error raised inside a Lua script carries the reply's code after this ("…: -READONLY You…"). */
const SCRIPT_ERROR = /^ERR .*?-?\b(READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|LOADING|NOREPLICAS)\b/
/** `maxmemory` reached under `noeviction`: a plain reply, or the same raised inside a Lua script. */
const OUT_OF_MEMORY = /^OOM |^ERR .*?-OOM\b/
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
 * ACK_ERR_REDIS_UNAVAILABLE (wait and retry), ACK_ERR_REDIS_OUT_OF_MEMORY (wait and retry too: Redis
 * refuses writes until memory is freed), ACK_ERR_GROUP_MISSING (recreate the group) or
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
  if (OUT_OF_MEMORY.test(message)) {
    return new BrokerError(
      BROKER_FULL,
      `${what}: Redis is out of memory and refuses writes (${message}). ` +
        'Free memory in Redis or raise its maxmemory; consumers keep their results and retry.',
      { cause: err },
    )
  }
  if (
    TRANSIENT_NAMES.has(e?.name ?? '') ||
    TRANSIENT_CODES.has(e?.code ?? '') ||
    TRANSIENT.some((p) => message.startsWith(p)) ||
    SCRIPT_ERROR.test(message)
  ) {
    return new BrokerError(BROKER_UNAVAILABLE, `${what}: Redis is unavailable (${message})`, { cause: err })
  }
  return new BrokerError('ACK_ERR_REDIS_COMMAND', `${what} failed: ${message}`, { cause: err })
}
