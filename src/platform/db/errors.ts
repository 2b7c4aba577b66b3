import { HttpError, defineErrorCodes } from '../http/index.ts';

export const DbCodes = defineErrorCodes('data', {
  DEPENDENCY_UNAVAILABLE: {
    kind: 'Unavailable',
    title: 'Dependency unavailable',
    description:
      'The database (or another dependency) did not answer in time; retry after `Retry-After` seconds.',
  },
  INVALID_CURSOR: {
    kind: 'BadRequest',
    title: 'Invalid cursor',
    description:
      'The pagination cursor is malformed, tampered with, or belongs to another listing or sort order.',
  },
  INVALID_LIST_QUERY: {
    kind: 'Invalid',
    title: 'Invalid list query',
    description:
      'Unknown filter or sort fields, or operators a field does not allow; `errors` names each.',
  },
  CONFLICT: {
    kind: 'Conflict',
    title: 'Conflict',
    description:
      'The change conflicts with the current state (a unique value is taken, or a concurrent change won).',
  },
});

/** SQLSTATE classes and codes that mean "the database is not there right now", not "the query is wrong". */
const UNAVAILABLE_STATES = new Set([
  '57P01', // admin_shutdown (backend terminated)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, or connections not allowed)
  '57014', // query_canceled (statement_timeout)
  '53300', // too_many_connections
  '53000', // insufficient_resources
  '55000', // object_not_in_prerequisite_state: e.g. database does not allow connections
  '3D000', // invalid_catalog_name: database does not exist (dropped under us)
]);
const UNAVAILABLE_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'EAI_AGAIN',
]);
const UNAVAILABLE_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error',
  'Cannot use a pool after calling end',
  'connection is closed',
  'Connection terminated unexpectedly',
];

/** True when an error from `pg` means the database is unreachable, overloaded or timed out. */
export function isUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const e = error as Error & { code?: string };
  if (
    typeof e.code === 'string' &&
    (UNAVAILABLE_STATES.has(e.code) || e.code.startsWith('08') || UNAVAILABLE_ERRNOS.has(e.code))
  )
    return true;
  if (error instanceof AggregateError) return error.errors.some(isUnavailable);
  return (
    UNAVAILABLE_MESSAGES.some((m) => e.message.includes(m)) ||
    (e.cause !== undefined && isUnavailable(e.cause))
  );
}

/** Seconds a client should wait before retrying when the database is unavailable. */
export const DB_RETRY_AFTER_SECONDS = 5;

/**
 * Translates driver errors at the edge of the data area: unavailability becomes a 503 with
 * `Retry-After` (never the driver's message). Anything else is left to the caller.
 */
export function translateDbError(error: unknown): HttpError | undefined {
  if (!isUnavailable(error)) return undefined;
  return new HttpError(DbCodes.DEPENDENCY_UNAVAILABLE, {
    detail: 'The database is unavailable or too slow right now. Retry later.',
    headers: { 'retry-after': String(DB_RETRY_AFTER_SECONDS) },
    cause: error,
  });
}

/** True for a unique-constraint violation, optionally on a named constraint. */
export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  const e = error as { code?: string; constraint?: string };
  return e?.code === '23505' && (constraint === undefined || e.constraint === constraint);
}
