// Benchmark fixture: a handler that does nothing, so the benchmark measures only the runtime's own
// cost per message (read, hand-off to a worker thread, result, ack).
export default async function () {}
