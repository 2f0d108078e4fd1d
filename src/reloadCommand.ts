import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { loadConfig } from './config.js'
import { UsageError } from './errors.js'

export const RELOAD_HELP = `  ackstate reload (--pid PID | --pid-file FILE) [--config FILE]
                                        check the config, then send SIGHUP to the running daemon so it
                                        applies it without a restart (a daemon started with
                                        ACKSTATE_PID_FILE writes its pid there)`

/**
 * `ackstate reload`: validates the config here first (a broken file is reported to the operator
 * instead of only to the daemon's log), then signals the daemon.
 */
export function reloadCommand(args: string[]): number {
  const { values } = parseArgs({
    args,
    options: {
      pid: { type: 'string' },
      'pid-file': { type: 'string' },
      config: { type: 'string', short: 'c' },
    },
    strict: true,
  })
  const pidFile = values['pid-file'] ?? process.env.ACKSTATE_PID_FILE
  let raw = values.pid
  if (raw === undefined && pidFile) {
    try {
      raw = readFileSync(pidFile, 'utf8').trim()
    } catch {
      throw new UsageError(
        'ACK_ERR_USAGE',
        `Cannot read the pid file ${pidFile}: is the daemon running with ACKSTATE_PID_FILE set?`,
      )
    }
  }
  if (raw === undefined) {
    throw new UsageError('ACK_ERR_USAGE', 'reload needs --pid PID or --pid-file FILE (or ACKSTATE_PID_FILE).')
  }
  const pid = Number(raw)
  if (!Number.isInteger(pid) || pid <= 0)
    throw new UsageError('ACK_ERR_USAGE', `"${raw}" is not a process id.`)
  if (values.config ?? process.env.ACKSTATE_CONFIG) loadConfig({ file: values.config })
  try {
    process.kill(pid, 'SIGHUP')
  } catch (err) {
    throw new UsageError(
      'ACK_ERR_USAGE',
      `Cannot signal process ${pid} (${(err as NodeJS.ErrnoException).code}): is the daemon running?`,
    )
  }
  process.stdout.write(`sent SIGHUP to ${pid}; the daemon logs "config reloaded" or "reload refused"\n`)
  return 0
}
