import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sql, type Generated } from 'kysely';
import { createHash } from 'node:crypto';
import { Type } from 'typebox';
import { executePrepared, tablesOf, type AnyDb } from '../db/index.ts';
import { HttpError, defineErrorCodes } from '../http/index.ts';
import { defineJob } from '../jobs/index.ts';
import type { Logger } from '../observability/index.ts';

/** The idempotency store's table. */
interface IdempotencyTables {
  gw_idempotency_key: {
    scope: string;
    key: string;
    fingerprint: string;
    state: 'running' | 'done';
    locked_until: Date;
    status_code: number | null;
    headers: Record<string, string> | null;
    body: string | null;
    created_at: Generated<Date>;
    expires_at: Date;
  };
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * POST routes that honour `Idempotency-Key` (Stripe-style replays for 24 hours);
     * `'required'`: a request without one is refused (400 `IDEMPOTENCY_KEY_REQUIRED`).
     */
    idempotency?: boolean | 'required';
  }
  interface FastifyRequest {
    /** Set while this request owns an idempotency key; its response is stored on send. */
    idempotencyClaim?: { scope: string; key: string };
  }
}

export const IdempotencyCodes = defineErrorCodes('idempotency', {
  INVALID_IDEMPOTENCY_KEY: {
    kind: 'BadRequest',
    title: 'Invalid idempotency key',
    description: '`Idempotency-Key` must be 1 to 255 printable ASCII characters.',
  },
  IDEMPOTENCY_KEY_REQUIRED: {
    kind: 'BadRequest',
    title: 'Idempotency key required',
    description:
      'This operation must not run twice by accident: send a new `Idempotency-Key` (1 to 255 printable ASCII characters) with it, and the same key when retrying it.',
  },
  IDEMPOTENCY_KEY_REUSED: {
    kind: 'Invalid',
    title: 'Idempotency key reused',
    description:
      'This key was used with a different request (method, path or body); use a new key for a new request.',
  },
  IDEMPOTENCY_IN_PROGRESS: {
    kind: 'Conflict',
    title: 'Request in progress',
    description:
      'A request with this key is still being processed; retry after `Retry-After` seconds to get its response.',
  },
});

/** How long a stored response is replayed. */
export const IDEMPOTENCY_TTL_HOURS = 24;
const KEY = /^[\x20-\x7e]{1,255}$/;
/** Response headers stored and replayed with the body. */
const KEPT_HEADERS = ['content-type', 'location', 'api-version'];

/** Who a key belongs to: keys of different callers never meet. */
function scopeOf(request: FastifyRequest): string {
  if (request.userId !== undefined) return `user:${request.userId}`;
  if (request.apiClientId !== undefined) return `client:${request.apiClientId}`;
  return `ip:${request.ip}`;
}

function fingerprint(request: FastifyRequest): string {
  return createHash('sha256')
    .update(request.method)
    .update('\n')
    .update(request.routeOptions.url ?? request.url)
    .update('\n')
    .update(JSON.stringify(request.params ?? null))
    .update('\n')
    .update(JSON.stringify(request.body ?? null))
    .digest('base64url');
}

/**
 * `Idempotency-Key` for POST routes with `config.idempotency`: the first request with a key runs
 * and its response (status, body, content type, location) is stored; a retry with the same key
 * and the same request gets it back with `Idempotent-Replayed: true`. Keys live in PostgreSQL,
 * scoped to the caller, for 24 hours. 5xx and 429 answers are not stored, so they can be retried.
 */
export function registerIdempotency(
  app: FastifyInstance,
  options: { db: AnyDb; logger: Logger; leaseMs: number },
): void {
  const { logger, leaseMs } = options;
  const db = tablesOf<IdempotencyTables>(options.db);

  // Hooks go on the opted-in routes only, decided once at registration.
  app.addHook('onRoute', (route) => {
    if (!route.config?.idempotency) return;
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (methods.some((m) => m !== 'POST'))
      throw new Error(`route ${route.url}: idempotency keys are for POST routes only`);
    route.preHandler = [...[route.preHandler ?? []].flat(), claim];
    route.onSend = [...[route.onSend ?? []].flat(), store];
  });

  async function claim(request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    const raw = request.headers['idempotency-key'];
    if (raw === undefined) {
      if (request.routeOptions.config.idempotency === 'required')
        throw new HttpError(IdempotencyCodes.IDEMPOTENCY_KEY_REQUIRED);
      return;
    }
    if (typeof raw !== 'string' || !KEY.test(raw)) {
      throw new HttpError(IdempotencyCodes.INVALID_IDEMPOTENCY_KEY);
    }
    const scope = scopeOf(request);
    const print = fingerprint(request);
    // Claim the key: a new key, an expired one, or a lapsed claim of the same request (its
    // process died mid-request) becomes ours; anything else is answered from the stored row.
    // This statement and the answer's store below are named prepared statements (db/prepared.ts):
    // they run twice in every keyed request, and planning them cost as much as running them.
    const claimed = await executePrepared(
      db,
      sql<{ scope: string }>`
      insert into gw_idempotency_key (scope, key, fingerprint, state, locked_until, expires_at)
      values (${scope}, ${raw}, ${print}, 'running', now() + ${`${String(leaseMs)} milliseconds`}::interval,
              now() + ${`${String(IDEMPOTENCY_TTL_HOURS)} hours`}::interval)
      on conflict (scope, key) do update
        set fingerprint = excluded.fingerprint, state = 'running', locked_until = excluded.locked_until,
            status_code = null, headers = null, body = null, created_at = now(),
            expires_at = excluded.expires_at
        where gw_idempotency_key.expires_at < now()
           or (gw_idempotency_key.state = 'running' and gw_idempotency_key.locked_until < now()
               and gw_idempotency_key.fingerprint = excluded.fingerprint)
      returning scope`,
    );
    if (claimed.rows.length > 0) {
      request.idempotencyClaim = { scope, key: raw };
      return;
    }
    const stored = await db
      .selectFrom('gw_idempotency_key')
      .selectAll()
      .where('scope', '=', scope)
      .where('key', '=', raw)
      .executeTakeFirst();
    if (!stored) {
      // Purged between the two statements: extremely rare; the client may simply retry.
      throw new HttpError(IdempotencyCodes.IDEMPOTENCY_IN_PROGRESS, {
        headers: { 'retry-after': '1' },
      });
    }
    if (stored.fingerprint !== print) throw new HttpError(IdempotencyCodes.IDEMPOTENCY_KEY_REUSED);
    if (stored.state === 'running') {
      throw new HttpError(IdempotencyCodes.IDEMPOTENCY_IN_PROGRESS, {
        headers: { 'retry-after': '1' },
      });
    }
    reply.code(stored.status_code ?? 200);
    for (const [name, value] of Object.entries(stored.headers ?? {})) reply.header(name, value);
    reply.header('idempotent-replayed', 'true');
    return reply.send(stored.body ?? '');
  }

  async function store(
    request: FastifyRequest,
    reply: FastifyReply,
    payload: unknown,
  ): Promise<unknown> {
    const claim = request.idempotencyClaim;
    if (!claim) return payload;
    request.idempotencyClaim = undefined;
    const status = reply.statusCode;
    const where = db
      .deleteFrom('gw_idempotency_key')
      .where('scope', '=', claim.scope)
      .where('key', '=', claim.key);
    try {
      if (
        status >= 500 ||
        status === 429 ||
        (typeof payload !== 'string' && !Buffer.isBuffer(payload))
      ) {
        // Not a final answer (or a stream we cannot store): free the key for a retry.
        await where.execute();
        return payload;
      }
      const headers: Record<string, string> = {};
      for (const name of KEPT_HEADERS) {
        const value = reply.getHeader(name);
        if (typeof value === 'string') headers[name] = value;
      }
      await executePrepared(
        db,
        db
          .updateTable('gw_idempotency_key')
          .set({
            state: 'done',
            status_code: status,
            headers: JSON.stringify(headers) as unknown as Record<string, string>,
            body: typeof payload === 'string' ? payload : payload.toString('utf8'),
          })
          .where('scope', '=', claim.scope)
          .where('key', '=', claim.key),
      );
    } catch (error) {
      // The response still goes out; the claim lapses after its lease and a retry runs again.
      logger.error({ err: error, requestId: request.id }, 'storing the idempotent response failed');
    }
    return payload;
  }
}

/** Hourly purge of expired keys (registered by the platform on its job queue). */
export const purgeIdempotencyKeys = defineJob({
  name: 'platform.idempotency-purge',
  payload: Type.Object({}),
  handler: async (_payload, ctx) => {
    const result = await tablesOf<IdempotencyTables>(ctx.db)
      .deleteFrom('gw_idempotency_key')
      .where('expires_at', '<', new Date())
      .executeTakeFirst();
    const deleted = Number(result.numDeletedRows);
    if (deleted > 0) ctx.log.info({ deleted }, 'expired idempotency keys purged');
    return { deleted };
  },
  options: { cron: { expression: '17 * * * *', payload: {} }, retries: 1 },
});
