import type { AnyStateMachine } from 'xstate'
import { consumerMachine } from '../../machines/consumerMachine.js'
import { reclaimerMachine } from '../../machines/reclaimerMachine.js'
import { republisherMachine } from '../../machines/republisherMachine.js'
import { delayMachine } from '../../machines/delayMachine.js'
import { supervisorMachine } from '../../machines/supervisorMachine.js'
import { UsageError } from '../errors.js'

/**
 * The machines `ackstate visualize` knows, by the name `--machine` takes. A new machine in machines/
 * is added here, and only here: the command, the docs pictures and the tests all read this list.
 */
export const MACHINES: Readonly<Record<string, AnyStateMachine>> = {
  consumer: consumerMachine,
  supervisor: supervisorMachine,
  reclaimer: reclaimerMachine,
  republisher: republisherMachine,
  'delay-scheduler': delayMachine,
}

/** The named machine, or every machine in registry order when no name is given. */
export function selectMachines(name?: string): AnyStateMachine[] {
  if (name === undefined) return Object.values(MACHINES)
  const machine = Object.hasOwn(MACHINES, name) ? MACHINES[name] : undefined
  if (!machine) {
    throw new UsageError(
      'ACK_ERR_USAGE',
      `Unknown machine "${name}". Known machines: ${Object.keys(MACHINES).join(', ')}.`,
    )
  }
  return [machine]
}
