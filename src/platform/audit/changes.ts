import { isDeepStrictEqual } from 'node:util';

/** What replaces the value of a secret field in a diff. */
export const REDACTED = '[redacted]';

/** Field names whose values never enter the trail, before or after (case-insensitive, anywhere in the name). */
const SECRET_FIELD = /password|secret|token|hash|key|otp|code/i;

/** One changed field: its value before and after (either `[redacted]` for a secret). */
export interface AuditChange {
  from: unknown;
  to: unknown;
}

/** The changed fields of a record, by name: what goes in an audit event's `data.changes`. */
export type AuditChanges = Record<string, AuditChange>;

export interface AuditChangesOptions {
  /** More field names to redact (exact names, case-insensitive), besides the secret-looking ones. */
  redact?: readonly string[];
  /** Fields left out of the diff altogether (e.g. `updatedAt`, which always changes). */
  ignore?: readonly string[];
}

/**
 * JSON-ready form of a value: dates as ISO strings, `undefined` as null (absent before or
 * after), and inside objects and arrays the secret-looking fields redacted too.
 */
function plain(value: unknown, redact: ReadonlySet<string> | null): unknown {
  if (value === undefined) return null;
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map((v) => plain(v, redact));
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value))
      out[k] = redact && isSecret(k, redact) ? REDACTED : plain(v, redact);
    return out;
  }
  return value;
}

const isSecret = (name: string, redact: ReadonlySet<string>) =>
  SECRET_FIELD.test(name) || redact.has(name.toLowerCase());

/**
 * The fields that differ between two versions of a record, `{ field: { from, to } }`, for an
 * audit event's `data.changes`; unchanged fields are left out (values compared deeply, dates by
 * time). Fields whose names look secret (password, secret, token, hash, key, otp, code) and those
 * named in `redact` show `[redacted]` on both sides: the trail says that they changed, never to
 * what. A field present on one side only changes from or to null.
 */
export function auditChanges(
  before: Readonly<Record<string, unknown>> | null | undefined,
  after: Readonly<Record<string, unknown>> | null | undefined,
  options: AuditChangesOptions = {},
): AuditChanges {
  const redact = new Set((options.redact ?? []).map((f) => f.toLowerCase()));
  const ignore = new Set(options.ignore ?? []);
  const from = before ?? {};
  const to = after ?? {};
  const changes: AuditChanges = {};
  const names = new Set([...Object.keys(from), ...Object.keys(to)]);
  for (const name of [...names].sort()) {
    if (ignore.has(name)) continue;
    // Compared before redaction (a changed secret shows as changed), recorded after.
    const a = Object.hasOwn(from, name) ? from[name] : undefined;
    const b = Object.hasOwn(to, name) ? to[name] : undefined;
    if (isDeepStrictEqual(plain(a, null), plain(b, null))) continue;
    changes[name] = isSecret(name, redact)
      ? { from: REDACTED, to: REDACTED }
      : { from: plain(a, redact), to: plain(b, redact) };
  }
  return changes;
}
