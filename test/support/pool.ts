import type { TestContext } from 'node:test'
import { HandlerPool, type PoolOptions } from '../../src/pool/handlerPool.js'

/** A one-thread pool on `module`, destroyed when the test ends; `options` override the small defaults. */
export function testPool(t: TestContext, module: string, options: Partial<PoolOptions> = {}): HandlerPool {
  const pool = new HandlerPool({
    module,
    threads: 1,
    maxMemoryMb: 64,
    maxYoungMemoryMb: 12,
    capacity: 1,
    logLevel: 'silent',
    ...options,
  })
  t.after(() => pool.destroy())
  return pool
}
