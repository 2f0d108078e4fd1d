// Example handler: runs in a worker thread for each message of the `orders` stream.
// Return to ack; throw to retry; throw a PermanentError (from 'ackstate') to dead-letter at once.
export default async function handleOrder(message, { logger }) {
  const order = message.payload === null ? null : JSON.parse(message.payload)
  logger.info({ id: message.id, entryId: message.entryId, total: order?.total }, 'order handled')
}
