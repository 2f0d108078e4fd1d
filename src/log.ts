import { pino, type DestinationStream, type Logger } from 'pino'

export type { Logger }

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

/** Root logger: JSON to stdout (or `destination` in tests), credentials redacted. */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'ackstate', pid: process.pid, ...(process.env.DYNO ? { dyno: process.env.DYNO } : {}) },
    redact: ['*.password', 'redisUrl', 'databaseUrl', '*.redisUrl', '*.databaseUrl'],
  }
  return destination ? pino(options, destination) : pino(options)
}

/** One child logger per actor, named by its system id, with the stream and group it works on. */
export function childFor(log: Logger, actor: string, fields: Record<string, string> = {}): Logger {
  return log.child({ actor, ...fields })
}

/** `redis://user:secret@host:6379/0` → `redis://user:***@host:6379/0`, for log lines and errors. */
export function redactUrl(raw: string): string {
  try {
    const url = new URL(raw)
    if (url.password) url.password = '***'
    return url.toString()
  } catch {
    return '[unparseable url]'
  }
}
