import type { Sequelize } from 'sequelize'
import { createActor, fromPromise, type Actor, type ActorRefFrom, type InspectionEvent } from 'xstate'
import { consumerMachine } from '../machines/consumerMachine.js'
import { reclaimerMachine } from '../machines/reclaimerMachine.js'
import { republisherMachine } from '../machines/republisherMachine.js'
import { delayMachine } from '../machines/delayMachine.js'
import { consumerId, supervisorMachine, type SupervisorOutput } from '../machines/supervisorMachine.js'
import { ackMessages } from './actors/ackMessages.js'
import { claimDue } from './actors/claimDue.js'
import { heartbeat, releaseHeartbeat } from './actors/heartbeat.js'
import { reclaimOrphans } from './actors/reclaimOrphans.js'
import { trimStreams } from './actors/trimStreams.js'
import { republish } from './actors/republish.js'
import { pruneSettled } from './actors/pruneSettled.js'
import { releaseDue } from './actors/releaseDue.js'
import { listenForDelays } from './actors/listenForDelays.js'
import { closeConsumer } from './actors/closeConsumer.js'
import { deadLetter } from './actors/deadLetter.js'
import { processBatch } from './actors/processBatch.js'
import { readBatch } from './actors/readBatch.js'
import { recordRetries } from './actors/recordRetries.js'
import { reserveCapacity } from './actors/reserveCapacity.js'
import { startConsumer } from './actors/startConsumer.js'
import type { Config } from './config.js'
import { combineInspectors, createInspector, stateName } from './inspect.js'
import type { Logger } from './log.js'
import type { HandlerPool } from './pool/handlerPool.js'
import { createPools, probePools } from './pool/pools.js'
import { consumerName } from './redis/consumerName.js'
import { moduleHash, planReload, type ReloadPlan } from './reload.js'
import { heartbeatKey } from './redis/keys.js'
import { warnOnEviction } from './redis/evictionPolicy.js'
import { Resources } from './resources.js'

type ConsumerRef = ActorRefFrom<typeof consumerMachine>

export interface Runtime {
  /** The root actor (systemId "supervisor"). */
  actor: Actor<typeof supervisorMachine>
  /** Resolves when the supervisor stopped, with the exit code to use. */
  done: Promise<SupervisorOutput>
  /** Starts the drain; calling it again does nothing. */
  shutdown(): void
  /**
   * Applies a new (validated) config: pools for added and changed consumers are made and their handler
   * modules checked first; a bad one refuses the reload (throws) and nothing changes. Then unchanged
   * consumers keep running, removed ones drain, added ones start, changed ones drain and start again.
   */
  reload(next: Config): Promise<ReloadPlan>
  /** The config now running. */
  config(): Config
}

/** What a consumer actor is started with. */
function consumerInput(c: Config['consumers'][number], consumer: string) {
  return {
    name: c.name,
    stream: c.stream,
    group: c.group,
    consumer,
    batchSize: c.batchSize,
    blockMs: c.blockMs,
    maxAttempts: c.maxAttempts,
  }
}

/** Part of the shutdown budget kept for closing pools and connections after the drain. */
export function drainBudget(timeoutMs: number): number {
  return timeoutMs - Math.min(2_000, Math.floor(timeoutMs / 5))
}

export interface RuntimeOptions {
  /** The opened store (openStore), or null/absent to run on Redis alone. */
  store?: Sequelize | null
  /** Extra observers of XState's inspection events (the debug view), beside the debug-log bridge. */
  inspectors?: ((ev: InspectionEvent) => void)[]
}

/** Wires the pure machines to their I/O and starts the supervisor. */
export function startRuntime(
  config: Config,
  log: Logger,
  pools: Map<string, HandlerPool>,
  options: RuntimeOptions = {},
): Runtime {
  const res = new Resources(config, log, pools, options.store ?? null)
  const consumer = consumerName()

  const consumerLogic = consumerMachine.provide({
    actors: {
      startConsumer: startConsumer(res),
      reserveCapacity: reserveCapacity(res),
      claimDue: claimDue(res),
      readBatch: readBatch(res),
      processBatch: processBatch(res),
      deadLetter: deadLetter(res),
      ackMessages: ackMessages(res),
      recordRetries: recordRetries(res),
      closeConsumer: closeConsumer(res),
    },
    guards: {
      hasRoomFor: ({ context }) => res.pool(context.name).gate.hasRoomFor(context.batchSize),
      claimMayBeDue: ({ context }) => res.schedule.isDue(context.name) || res.failovers.isDue(context.stream),
    },
    actions: {
      takeCapacity: (_, params) => res.pool(params.name).gate.take(params.name, params.count),
      releaseCapacity: (_, params) => res.pool(params.name).gate.release(params.name, params.count),
      // Once per outage: the reconnect backoff retries quietly until the broker answers again.
      reportBrokerDown: (_, { name, error, failures }) => {
        if (failures === 1)
          res.logFor(name).warn({ err: error }, 'redis refused or unreachable; results kept, retrying')
      },
    },
  })

  const reclaimInput = {
    consumer,
    intervalMs: config.reclaim.intervalMs,
    heartbeatTtlMs: config.reclaim.heartbeatTtlMs,
    targets: config.consumers.map((c) => ({ name: c.name, stream: c.stream, group: c.group })),
  }
  const reclaimerLogic = reclaimerMachine.provide({
    actors: {
      heartbeat: heartbeat(res),
      reclaimOrphans: reclaimOrphans(res),
      releaseHeartbeat: releaseHeartbeat(res),
      trimStreams: trimStreams(res),
    },
    actions: {
      wakeConsumers: (_, { names }) => names.forEach((name) => res.schedule.wake(name)),
    },
  })

  const supervisorLog = log.child({ actor: 'supervisor' })
  const root = supervisorMachine.provide({
    actors: {
      consumer: consumerLogic,
      reclaimer: reclaimerLogic,
      republisher: republisherMachine.provide({
        actors: { republish: republish(res), pruneSettled: pruneSettled(res) },
      }),
      delayScheduler: delayMachine.provide({
        actors: { releaseDue: releaseDue(res), listenForDelays: listenForDelays(res) },
      }),
      openResources: fromPromise(async () => {
        try {
          // The first beat happens before any consumer reads, so no other daemon can take this
          // daemon's fresh consumers for dead ones.
          await res.redis.set(
            heartbeatKey(consumer),
            res.heartbeatValue(),
            'PX',
            config.reclaim.heartbeatTtlMs,
          )
          supervisorLog.info({ consumers: config.consumers.length, consumer }, 'connected to redis')
          await warnOnEviction(res.redis, supervisorLog)
        } catch (err) {
          supervisorLog.warn({ err }, 'redis is not reachable yet; consumers keep retrying')
        }
      }),
      closeResources: fromPromise(async ({ input }) => {
        await res.close(input.force)
      }),
    },
    actions: {
      activateConsumer: (_, { name }) => res.activate(name),
      reportCrash: (_, { name, error, restart, delayMs }) => {
        const fields = { err: error, consumer: name, delayMs }
        if (restart) supervisorLog.error(fields, 'consumer crashed; restarting')
        else supervisorLog.fatal(fields, 'consumer crashed too often; stopping the daemon')
      },
      reportUnfinished: ({ self }) => {
        for (const c of config.consumers) {
          const child = self.getSnapshot().children[consumerId(c.name)] as ConsumerRef | undefined
          const ctx = child?.getSnapshot().context
          if (!ctx || ctx.batch.length === 0) continue
          res
            .logFor(c.name)
            .warn(
              { entryIds: ctx.batch.map((e) => e.entryId), count: ctx.batch.length },
              'shutdown timed out; entries left pending for re-delivery',
            )
        }
      },
    },
  })

  const actor = createActor(root, {
    id: 'supervisor',
    systemId: 'supervisor',
    inspect: combineInspectors([createInspector(log), ...(options.inspectors ?? [])]),
    input: {
      consumers: config.consumers.map((c) => consumerInput(c, consumer)),
      reclaim: reclaimInput,
      republish: res.store
        ? {
            consumer,
            intervalMs: config.republish.intervalMs,
            batchSize: config.republish.batchSize,
            republishAfterMs: config.republish.afterMs,
            staleAfterMs: config.republish.staleAfterMs,
          }
        : null,
      delay: res.store
        ? { consumer, batchSize: config.delay.batchSize, maxIdleMs: config.delay.maxIdleMs }
        : null,
      maxRestarts: config.supervisor.maxRestarts,
      restartWindowMs: config.supervisor.restartWindowMs,
      drainTimeoutMs: drainBudget(config.shutdown.timeoutMs),
    },
  })

  const done = new Promise<SupervisorOutput>((resolve, reject) => {
    actor.subscribe({
      complete: () => resolve(actor.getSnapshot().output!),
      error: (err) => reject(err instanceof Error ? err : new Error(String(err))),
    })
  })
  actor.start()
  // Consumers waiting out an outage retry at once when the connection is back, not at their backoff.
  res.brokerReady = () => {
    for (const c of current.consumers) {
      const child = actor.getSnapshot().children[consumerId(c.name)] as ConsumerRef | undefined
      child?.send({ type: 'broker.ready' })
    }
  }
  res.describeActors = () => {
    const out: Record<string, string> = { supervisor: stateName(actor.getSnapshot().value) }
    for (const [id, child] of Object.entries(actor.getSnapshot().children)) {
      const snap = (
        child as { getSnapshot(): { value?: unknown; status?: string } } | undefined
      )?.getSnapshot()
      if (snap && snap.status === 'active') out[id] = stateName(snap.value)
    }
    return out
  }

  let current = config
  const hashes = new Map(config.consumers.map((c) => [c.handler, moduleHash(c.handler)]))
  const reload = async (next: Config): Promise<ReloadPlan> => {
    const plan = planReload(current, next, hashes)
    const fresh = [...plan.added, ...plan.changed]
    const pools = createPools({ ...next, consumers: fresh })
    await probePools(pools)
    for (const c of fresh) hashes.set(c.handler, moduleHash(c.handler))
    res.stage(fresh, pools, plan.removed)
    current = next
    actor.send({
      type: 'reload.request',
      consumers: next.consumers.map((c) => consumerInput(c, consumer)),
      changed: plan.changed.map((c) => c.name),
    })
    return plan
  }
  return {
    actor,
    done,
    shutdown: () => actor.send({ type: 'shutdown.request' }),
    reload,
    config: () => current,
  }
}
