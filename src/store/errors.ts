import { StoreError } from '../errors.js'
import { redactUrl } from '../log.js'

/** PostgreSQL's SQLSTATE for "database does not exist". */
export const MISSING_DATABASE = '3D000'

/**
 * The codes on an error and on everything it wraps. Sequelize wraps pg's error as `parent`/`original`,
 * Node wraps a failed dual-stack connect in an AggregateError, so the useful code can sit a level down.
 */
export function errorCodes(err: unknown): string[] {
  const codes: string[] = []
  const seen = new Set<unknown>()
  const visit = (e: unknown): void => {
    if (typeof e !== 'object' || e === null || seen.has(e)) return
    seen.add(e)
    const { code, parent, original, cause, errors } = e as Record<string, unknown>
    if (typeof code === 'string') codes.push(code)
    for (const inner of [parent, original, cause]) visit(inner)
    if (Array.isArray(errors)) for (const inner of errors) visit(inner)
  }
  visit(err)
  return codes
}

/** The innermost message: pg's own words ("password authentication failed for user …"). */
function rootMessage(err: unknown): string {
  let current = err
  for (;;) {
    const next = (current as { parent?: unknown; original?: unknown; cause?: unknown } | null | undefined)
      ?.parent
    if (typeof next !== 'object' || next === null) break
    current = next
  }
  return current instanceof Error ? current.message : String(current)
}

function target(databaseUrl: string): { host: string; database: string; user: string } {
  try {
    const url = new URL(databaseUrl)
    return {
      host: `${url.hostname}:${url.port || '5432'}`,
      database: decodeURIComponent(url.pathname.replace(/^\//, '')),
      user: decodeURIComponent(url.username),
    }
  } catch {
    return { host: '?', database: '?', user: '?' }
  }
}

const CHECK_URL = 'Check DATABASE_URL (or databaseUrl in the config file)'
const RUN_WITHOUT = 'or set ACKSTATE_STORE_ENABLED=false to run without PostgreSQL'

/** Turns a failed connect into ACK_ERR_STORE_UNAVAILABLE naming the (redacted) URL and what to check. */
export function unavailable(err: unknown, databaseUrl: string): StoreError {
  const codes = errorCodes(err)
  const at = redactUrl(databaseUrl)
  const { host, database, user } = target(databaseUrl)
  const has = (...wanted: string[]) => wanted.some((c) => codes.includes(c))
  let message: string
  if (has('ECONNREFUSED')) {
    message =
      `PostgreSQL at ${at} refused the connection: nothing listens on ${host}. ${CHECK_URL} and that ` +
      `the server runs (locally \`bash scripts/services.sh\` starts one), ${RUN_WITHOUT}.`
  } else if (has('ENOTFOUND', 'EAI_AGAIN')) {
    message = `The host of ${at} cannot be resolved. ${CHECK_URL}: the host name is wrong or DNS is down.`
  } else if (has('ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH') || /timeout|timed out/i.test(rootMessage(err))) {
    message = `PostgreSQL at ${at} did not answer in time. ${CHECK_URL}, the network and firewall to ${host}.`
  } else if (has('28P01', '28000')) {
    message = `PostgreSQL at ${at} refused the login of user "${user}": ${rootMessage(err)}. ${CHECK_URL}: user and password.`
  } else if (has(MISSING_DATABASE)) {
    message =
      `Database "${database}" does not exist on ${host} (${at}). It is created on its own only on a local ` +
      `URL (127.0.0.1, localhost): create it (\`createdb ${database}\`, or Heroku Postgres provisions one) ` +
      `or point DATABASE_URL at an existing database.`
  } else {
    message = `PostgreSQL at ${at} cannot be used: ${rootMessage(err)}. ${CHECK_URL} and the server's log.`
  }
  return new StoreError('ACK_ERR_STORE_UNAVAILABLE', message, { cause: err })
}

/** True when the failure is about reaching the server, not about the SQL that ran on it. */
export function isConnectionFailure(err: unknown): boolean {
  const name = (err as { name?: unknown } | null)?.name
  if (typeof name === 'string' && name.startsWith('SequelizeConnection')) return true
  if (typeof name === 'string' && /^Sequelize(HostNot|AccessDenied|InvalidConnection)/.test(name)) return true
  return errorCodes(err).some((c) => /^(E[A-Z]+|08\w{3}|57P0[1-3])$/.test(c))
}
