/**
 * Key helpers. The stream key is the configured name as it is, so any client can XADD to it; every
 * key derived from it wraps the name in a hash tag ({orders}:dlq) so that on Redis Cluster all of a
 * stream's keys share its slot and multi-key commands never hit CROSSSLOT.
 */

/** `{orders}`: hashes exactly like the key `orders`. */
export const tag = (stream: string) => `{${stream}}`

/** The dead-letter stream of a stream. */
export const deadLetterKey = (stream: string) => `${tag(stream)}:dlq`

/** Held while one recovery of the stream runs (several consumers or daemons notice the same loss). */
export const recoveryLockKey = (stream: string) => `${tag(stream)}:recovering`

/** A daemon's heartbeat: present while the daemon with that consumer name is alive. */
export const heartbeatKey = (consumer: string) => `ackstate:heartbeat:{${consumer}}`
