/**
 * Which driver errors mean "the database cannot be reached right now" (answer
 * 503 + Retry-After and let the pool reconnect) as opposed to a bug or bad
 * SQL (answer 500). Kept in db/ because it knows driver internals.
 */

/** Socket-level failures: the server is down, restarting, or the network is cut. */
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
]);

/**
 * SQLSTATEs that say "try again later": class 08 (connection exception) is
 * matched by prefix; these are the others. 25006 is what a demoted primary
 * answers during a failover, so it is an outage, not a bug.
 */
const PG_STATES = new Set([
  '57P01', // admin_shutdown (server stopped or connection terminated by an operator)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, recovering)
  '53300', // too_many_connections
  '25006', // read_only_sql_transaction (failover to a standby)
]);

/**
 * node-postgres reports a dead connection with plain Errors and no code; these
 * messages are stable across pg 8.x (client.js, pg-pool/index.js).
 */
const PG_MESSAGES = [
  /^Connection terminated/,
  /not queryable/,
  /timeout exceeded when trying to connect/,
  /^Query read timeout/,
];

/**
 * True when `err` (or its cause chain, or any error of an AggregateError)
 * says the database is unreachable, shutting down or refusing connections.
 * SQLITE_BUSY counts too: the busy timeout already expired, so the caller
 * should back off and retry rather than see a 500.
 */
export function isDatabaseUnavailable(err: unknown, depth = 0): boolean {
  if (depth > 5 || err === null || typeof err !== 'object') return false;
  const e = err as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  if (SOCKET_CODES.has(code)) return true;
  if (/^[0-9A-Z]{5}$/.test(code) && (code.startsWith('08') || PG_STATES.has(code))) return true;
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_BUSY_SNAPSHOT' || code === 'SQLITE_BUSY_TIMEOUT') return true;
  const message = typeof e.message === 'string' ? e.message : '';
  // pg's own errors carry no code; a DatabaseError always has one, so a driver message is never confused with SQL text.
  if (!code && PG_MESSAGES.some((re) => re.test(message))) return true;
  if (Array.isArray(e.errors) && e.errors.some((inner) => isDatabaseUnavailable(inner, depth + 1))) return true;
  return e.cause !== undefined && isDatabaseUnavailable(e.cause, depth + 1);
}
