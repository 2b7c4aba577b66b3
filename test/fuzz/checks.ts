import type { FastifyInstance } from 'fastify';
import type { Pool } from 'pg';
import type { Response as InjectResponse } from 'light-my-request';
import { newId } from '../../src/platform/db/index.ts';
import type { AuthCase, FuzzRequest, MalformedAuth } from './arbitraries.ts';
import type { Actors } from './harness.ts';
import { documentedStatus, type Operation, type ResponseValidators } from './openapi.ts';

// ---------------------------------------------------------------------------------------------
// "A rejected request changes no data": a fingerprint of every table of the public schema
// ---------------------------------------------------------------------------------------------

/**
 * What a rejected (4xx) request may legitimately write, and is therefore left out of the
 * fingerprint. Everything else in the public schema is compared, row by row.
 *
 * - `gw_user`: `failed_login_count`, `lockout_count`, `locked_until` are the brute-force counters
 *   a wrong password, code or reset token increments by design (401/403 answers), and
 *   `updated_at` is bumped by the table's trigger on that same update. Every other column
 *   (address, name, password hash, verification, deletion) is compared.
 * - `gw_login_event`: the sign-in history records refused sign-ins (`failure`, `locked`,
 *   `unverified`, `refresh-reuse`) on purpose; only those rows are left out. A `success` row
 *   written by a rejected request would show.
 * - `gw_audit_event`: the append-only trail records refused attempts on purpose
 *   (`auth.login.failure`, `auth.mfa.failure`, `auth.lockout`, `auth.refresh.reuse`); only those
 *   actions are left out, any other event written by a rejected request would show.
 * - `gw_session`: `revoked_at` and `revoked_reason` of a session revoked for refresh-token reuse
 *   (a 401 that must end the session: docs/identity.md, "Reuse detection"). Only rows with
 *   reason `refresh-reuse` are compared without those two columns.
 * - `gw_event`: the `session.revoked` event of that same revocation (reason `refresh-reuse`),
 *   published in its transaction; any other event written by a rejected request would show.
 * - `gw_audit_chain_head`: the head of the audit hash chain moves with every audit row, the
 *   excluded ones above included (the audit rows themselves are still compared).
 *
 * pg-boss's tables live in their own schema and are not compared (workers do not run here, so
 * nothing moves there but what requests enqueue, and a rejected request enqueuing a job would
 * still show through `gw_mail_delivery` for mail).
 */
const EXCLUDED_COLUMNS: Record<string, string[]> = {
  gw_user: ['failed_login_count', 'lockout_count', 'locked_until', 'updated_at'],
};
const EXCLUDED_ROWS: Record<string, string> = {
  gw_login_event: `outcome in ('failure', 'locked', 'unverified', 'refresh-reuse')`,
  gw_audit_event: `action in ('auth.login.failure', 'auth.mfa.failure', 'auth.lockout', 'auth.refresh.reuse')`,
  gw_event: `type = 'session.revoked' and data->>'reason' = 'refresh-reuse'`,
  gw_audit_chain_head: 'true',
};
const ROW_EXPRESSIONS: Record<string, string> = {
  gw_session: `case when t.revoked_reason = 'refresh-reuse' then to_jsonb(t) - 'revoked_at' - 'revoked_reason' else to_jsonb(t) end`,
};

/** Builds the fingerprint query once: row count and md5 of the sorted rows, per table. */
export async function fingerprinter(pool: Pool): Promise<() => Promise<Map<string, string>>> {
  const { rows } = await pool.query<{ name: string; columns: string[] }>(
    `select c.relname as name, array_agg(a.attname::text order by a.attnum) as columns
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
       join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
      where n.nspname = 'public' and c.relkind in ('r', 'p')
      group by c.relname order by c.relname`,
  );
  const parts = rows.map(({ name, columns }) => {
    const excluded = EXCLUDED_COLUMNS[name] ?? [];
    for (const c of excluded)
      if (!columns.includes(c)) throw new Error(`fingerprint: ${name}.${c} no longer exists`);
    const row =
      ROW_EXPRESSIONS[name] ?? ['to_jsonb(t)', ...excluded.map((c) => `'${c}'`)].join(' - ');
    const where = EXCLUDED_ROWS[name] ? `where not (${EXCLUDED_ROWS[name]})` : '';
    return `select '${name}' as name, count(*)::text || ':' || coalesce(md5(string_agg(r, '|' order by r)), '') as sum
              from (select (${row})::text as r from "${name}" t ${where}) x`;
  });
  const text = parts.join('\nunion all\n');
  return async () => {
    const result = await pool.query<{ name: string; sum: string }>(text);
    return new Map(result.rows.map((r) => [r.name, r.sum]));
  };
}

/** Tables whose fingerprint differs (count:md5 before → after). */
export function changedTables(before: Map<string, string>, after: Map<string, string>): string[] {
  return [...after.entries()]
    .filter(([name, sum]) => before.get(name) !== sum)
    .map(([name, sum]) => `${name} (${before.get(name) ?? 'absent'} → ${sum})`);
}

// ---------------------------------------------------------------------------------------------
// Credentials
// ---------------------------------------------------------------------------------------------

/** Same bytes, other text: the unused low bits of a base64url segment's last character set. */
function nonCanonical(token: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = token.at(-1) ?? 'A';
  // A 64-byte signature is 86 characters: the last carries 2 bits of data and 4 unused ones.
  const flipped = alphabet[alphabet.indexOf(last) ^ 1] ?? 'A';
  return token.slice(0, -1) + flipped;
}

async function malformedHeader(
  app: FastifyInstance,
  actors: Actors,
  kind: MalformedAuth,
): Promise<string> {
  const token = actors.user.headers.authorization?.slice('Bearer '.length) ?? '';
  const sign = (sub: string, sid: string) => app.identity.keys.sign({ sub, sid });
  switch (kind) {
    case 'basic-scheme':
      return 'Basic dXNlcjpwYXNzd29yZA==';
    case 'scheme-only':
      return 'Bearer';
    case 'scheme-and-space':
      return 'Bearer ';
    case 'two-spaces':
      return `Bearer  ${token}`;
    case 'lowercase-scheme':
      return `bearer ${token}`;
    case 'other-scheme':
      return `Token ${token}`;
    case 'no-scheme':
      return token;
    case 'garbage-token':
      return 'Bearer garbage';
    case 'three-dots':
      return 'Bearer a.b.c';
    case 'huge-token':
      return `Bearer ${'A'.repeat(10_000)}.${'B'.repeat(100)}.${'C'.repeat(86)}`;
    case 'non-canonical-signature':
      return `Bearer ${nonCanonical(token)}`;
    case 'tampered-payload': {
      const [h, p, s] = token.split('.');
      return `Bearer ${h ?? ''}.${(p ?? '').slice(0, -2)}AA.${s ?? ''}`;
    }
    case 'padded-token':
      return `Bearer ${token}==`;
    case 'two-tokens':
      return `Bearer ${token}, Bearer ${token}`;
    case 'signed-sid-not-uuid':
      return `Bearer ${await sign(actors.user.userId, 'not-a-uuid')}`;
    case 'signed-sub-not-uuid':
      return `Bearer ${await sign('x\u0000', actors.user.sessionId)}`;
    case 'signed-unknown-session':
      return `Bearer ${await sign(newId(), newId())}`;
    case 'signed-sid-of-other-user':
      return `Bearer ${await sign(actors.admin.userId, actors.user.sessionId)}`;
  }
}

/** The request's headers, with the actors' current tokens. */
export async function headersFor(
  app: FastifyInstance,
  actors: Actors,
  auth: AuthCase,
): Promise<Record<string, string>> {
  if ('actor' in auth) return actors.headersOf(auth.actor);
  return { authorization: await malformedHeader(app, actors, auth.malformed) };
}

// ---------------------------------------------------------------------------------------------
// The contract of one answer
// ---------------------------------------------------------------------------------------------

const mediaTypeOf = (res: InjectResponse) =>
  String(res.headers['content-type'] ?? '')
    .split(';')[0]
    ?.trim()
    .toLowerCase() ?? '';

const isJson = (media: string) => media === 'application/json' || media.endsWith('+json');

/** What is wrong with an answer, by the document (empty when nothing is). */
export function contractProblems(
  op: Operation,
  res: InjectResponse,
  validators: ResponseValidators,
): string[] {
  const problems: string[] = [];
  const status = res.statusCode;
  if (status >= 500 && !(status === 503 && res.headers['retry-after'] !== undefined)) {
    problems.push(`answered ${status} (a 5xx other than an overload 503 with Retry-After)`);
  }
  const key = documentedStatus(op, status);
  if (key === undefined) {
    problems.push(
      `status ${status} is not documented for ${op.id} (documented: ${Object.keys(op.responses).join(', ')})`,
    );
    return problems;
  }
  const documented = op.responses[key] ?? [];
  const media = mediaTypeOf(res);
  if (documented.length === 0) {
    if (res.rawPayload.length > 0)
      problems.push(`${key} is documented without a body, but the answer has one (${media})`);
    return problems;
  }
  if (!documented.includes(media)) {
    problems.push(
      `content type "${media}" is not documented for ${key} (documented: ${documented.join(', ')})`,
    );
    return problems;
  }
  let body: unknown = res.body;
  if (isJson(media)) {
    try {
      body = JSON.parse(res.body);
    } catch {
      problems.push(`the ${media} body is not JSON`);
      return problems;
    }
  }
  const errors = validators.check(op, key, media, body);
  if (errors) problems.push(`the body does not match the ${key} ${media} schema: ${errors}`);
  if (media === 'application/problem+json') {
    const problem = body as { status?: unknown; requestId?: unknown };
    if (problem.status !== status)
      problems.push(`problem.status ${String(problem.status)} is not the HTTP status ${status}`);
    if (problem.requestId !== res.headers['x-request-id'])
      problems.push('problem.requestId is not the X-Request-Id header');
  }
  return problems;
}

/**
 * A JSON body the route must refuse (by its schema, or NUL, or a non-finite number) answered with
 * a success: a problem. Bodies that are not JSON, or not sent as JSON, are left to the statuses.
 */
export function acceptedInvalidBody(
  op: Operation,
  req: FuzzRequest,
  res: InjectResponse,
  validators: ResponseValidators,
): string | null {
  if (!op.body || res.statusCode >= 400 || req.body.text === undefined) return null;
  if (req.body.contentType !== 'application/json') return null;
  let value: unknown;
  try {
    value = JSON.parse(req.body.text);
  } catch {
    return `a body that is not JSON was accepted (${res.statusCode})`;
  }
  const reason = validators.bodyRefusal(op, value);
  return reason ? `an invalid body was accepted (${res.statusCode}): ${reason}` : null;
}

// ---------------------------------------------------------------------------------------------
// Failure reports
// ---------------------------------------------------------------------------------------------

const clip = (s: string, n = 1_500) =>
  s.length > n ? `${s.slice(0, n)}… (${s.length} characters in all)` : s;

/** Everything needed to replay a failing request by hand. */
export function describeExchange(
  req: FuzzRequest,
  headers: Record<string, string>,
  res: InjectResponse | null,
  problems: string[],
): string {
  const lines = [
    ...problems.map((p) => `✗ ${p}`),
    `request: ${req.method} ${clip(req.url, 600)}`,
    `  auth: ${'actor' in req.auth ? req.auth.actor : `malformed (${req.auth.malformed})`}`,
    `  headers: ${clip(JSON.stringify(headers), 600)}`,
    `  body (${req.body.note}, content-type ${String(req.body.contentType)}): ${
      req.body.text === undefined ? '(none)' : clip(JSON.stringify(req.body.text), 800)
    }`,
  ];
  if (res) {
    lines.push(
      `response: ${res.statusCode} ${String(res.headers['content-type'] ?? '(no content type)')}`,
      `  headers: ${clip(JSON.stringify(res.headers), 600)}`,
      `  body: ${clip(res.body, 1_200)}`,
    );
  }
  return lines.join('\n');
}
