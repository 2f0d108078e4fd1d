import pg from 'pg'
import { fromCallback } from 'xstate'
import type { DelayEvent } from '../../machines/delayMachine.js'
import type { DelayInput } from '../../machines/types.js'
import type { Resources } from '../resources.js'
import { DELAY_CHANNEL } from '../store/delays.js'

/** Wait before listening again after the connection broke. */
const RETRY_MS = 1_000

/**
 * LISTEN on the delay channel with a connection of its own (a pooled one cannot hold a LISTEN), and
 * tell the scheduler about every stored delay. A broken connection is re-opened; in between, the
 * scheduler's maxIdleMs bounds how late a notification it missed can make a delivery.
 */
export const listenForDelays = (res: Resources) =>
  fromCallback<DelayEvent, DelayInput>(({ sendBack }) => {
    let client: pg.Client | null = null
    let stopped = false
    let retry: NodeJS.Timeout | undefined
    const log = res.log.child({ actor: 'delay-scheduler' })

    const connect = () => {
      if (stopped) return
      const c = new pg.Client({
        connectionString: res.config.databaseUrl,
        application_name: 'ackstate-delay',
      })
      client = c
      c.on('notification', (n) => {
        const dueAt = Number(n.payload)
        if (Number.isFinite(dueAt)) sendBack({ type: 'delay.scheduled', dueAt })
      })
      c.on('error', (err) => {
        log.warn({ err }, 'delay notifications lost; listening again')
        reconnect(c)
      })
      c.connect()
        .then(() => c.query(`LISTEN ${DELAY_CHANNEL}`))
        .catch((err: unknown) => {
          log.warn({ err }, 'could not listen for delay notifications; retrying')
          reconnect(c)
        })
    }
    const reconnect = (c: pg.Client) => {
      if (client !== c) return
      client = null
      c.end().catch(() => {})
      if (!stopped) retry = setTimeout(connect, RETRY_MS)
    }
    connect()
    return () => {
      stopped = true
      clearTimeout(retry)
      client?.end().catch(() => {})
      client = null
    }
  })
