import { sql } from 'kysely';
import { paginate, parseListQuery, type ListSpec, type PaginateOptions } from '../db/index.ts';
import type { WebhooksDb } from './tables.ts';

/** An endpoint as the service sees it (no secrets). */
export interface EndpointRow {
  id: string;
  ownerId: string;
  url: string;
  description: string;
  eventTypes: string[];
  enabled: boolean;
  ordered: boolean;
  rateLimitPerSecond: number | null;
  disabledReason: string | null;
  disabledAt: Date | null;
  failingSince: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

const ENDPOINT_COLUMNS = [
  'id',
  'owner_id as ownerId',
  'url',
  'description',
  'event_types as eventTypes',
  'enabled',
  'ordered',
  'rate_limit_per_second as rateLimitPerSecond',
  'disabled_reason as disabledReason',
  'disabled_at as disabledAt',
  'failing_since as failingSince',
  'created_at as createdAt',
  'updated_at as updatedAt',
] as const;

/** `GET /webhooks/endpoints`: newest first. */
export const endpointListSpec: ListSpec = {
  name: 'webhook-endpoints',
  sorts: { createdAt: 'created_at' },
  defaultSort: '-createdAt',
  filters: { enabled: { column: 'enabled', type: 'boolean', ops: ['eq'] } },
};

/** `GET /webhooks/endpoints/:id/deliveries`: newest first, by status and event type. */
export const deliveryListSpec: ListSpec = {
  name: 'webhook-deliveries',
  sorts: { createdAt: 'created_at' },
  defaultSort: '-createdAt',
  filters: {
    status: { column: 'status', type: 'string', ops: ['eq', 'in'] },
    eventType: { column: 'event_type', type: 'string', ops: ['eq', 'in'] },
  },
};

export interface NewEndpoint {
  id: string;
  ownerId: string;
  url: string;
  description: string;
  eventTypes: string[];
  enabled: boolean;
  ordered: boolean;
  rateLimitPerSecond: number | null;
}

export async function insertEndpoint(
  db: WebhooksDb,
  e: NewEndpoint,
  secret: { id: string; sealed: string },
): Promise<EndpointRow> {
  const row = await db
    .insertInto('gw_webhook_endpoint')
    .values({
      id: e.id,
      owner_id: e.ownerId,
      url: e.url,
      description: e.description,
      event_types: e.eventTypes,
      enabled: e.enabled,
      ordered: e.ordered,
      rate_limit_per_second: e.rateLimitPerSecond,
      disabled_reason: null,
      disabled_at: null,
      failing_since: null,
    })
    .returning(ENDPOINT_COLUMNS)
    .executeTakeFirstOrThrow();
  await db
    .insertInto('gw_webhook_secret')
    .values({ id: secret.id, endpoint_id: e.id, sealed: secret.sealed, expires_at: null })
    .execute();
  return row;
}

export function findEndpoint(db: WebhooksDb, id: string): Promise<EndpointRow | undefined> {
  return db
    .selectFrom('gw_webhook_endpoint')
    .select(ENDPOINT_COLUMNS)
    .where('id', '=', id)
    .executeTakeFirst();
}

/** One page of endpoints: of one owner, or of everyone (`ownerId` null, for admins). */
export function listEndpoints(
  db: WebhooksDb,
  ownerId: string | null,
  query: Readonly<Record<string, unknown>>,
  options: PaginateOptions,
) {
  const list = parseListQuery(endpointListSpec, query);
  let base = db.selectFrom('gw_webhook_endpoint').select(ENDPOINT_COLUMNS);
  if (ownerId !== null) base = base.where('owner_id', '=', ownerId);
  return paginate(db, endpointListSpec, list, base, options);
}

export interface EndpointPatch {
  url?: string;
  description?: string;
  eventTypes?: string[];
  enabled?: boolean;
  ordered?: boolean;
  rateLimitPerSecond?: number | null;
}

export function updateEndpoint(
  db: WebhooksDb,
  id: string,
  patch: EndpointPatch,
): Promise<EndpointRow | undefined> {
  const enabling = patch.enabled === true;
  return db
    .updateTable('gw_webhook_endpoint')
    .set({
      ...(patch.url === undefined ? {} : { url: patch.url }),
      ...(patch.description === undefined ? {} : { description: patch.description }),
      ...(patch.eventTypes === undefined ? {} : { event_types: patch.eventTypes }),
      ...(patch.ordered === undefined ? {} : { ordered: patch.ordered }),
      ...(patch.rateLimitPerSecond === undefined
        ? {}
        : { rate_limit_per_second: patch.rateLimitPerSecond }),
      ...(patch.enabled === undefined ? {} : { enabled: patch.enabled }),
      // Enabled again by its owner: a fresh start for the failure clock.
      ...(enabling ? { disabled_reason: null, disabled_at: null, failing_since: null } : {}),
      ...(patch.enabled === false ? { disabled_reason: 'manual', disabled_at: sql`now()` } : {}),
    })
    .where('id', '=', id)
    .returning(ENDPOINT_COLUMNS)
    .executeTakeFirst();
}

export async function deleteEndpoint(db: WebhooksDb, id: string): Promise<boolean> {
  const r = await db.deleteFrom('gw_webhook_endpoint').where('id', '=', id).executeTakeFirst();
  return r.numDeletedRows > 0n;
}

/**
 * Rotation: the current secrets keep signing until `overlapS` from now (older ones keep their
 * earlier end), expired ones are dropped, the new one becomes current.
 */
export async function rotateSecret(
  db: WebhooksDb,
  endpointId: string,
  secret: { id: string; sealed: string },
  overlapS: number,
): Promise<void> {
  const end = sql<Date>`now() + make_interval(secs => ${overlapS})`;
  await db
    .updateTable('gw_webhook_secret')
    .set({ expires_at: end })
    .where('endpoint_id', '=', endpointId)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', end)]))
    .execute();
  await db
    .deleteFrom('gw_webhook_secret')
    .where('endpoint_id', '=', endpointId)
    .where('expires_at', '<=', sql<Date>`now()`)
    .execute();
  await db
    .insertInto('gw_webhook_secret')
    .values({ id: secret.id, endpoint_id: endpointId, sealed: secret.sealed, expires_at: null })
    .execute();
}

/** The sealed secrets that sign now, per endpoint, newest first. */
export async function activeSecrets(
  db: WebhooksDb,
  endpointIds: readonly string[],
): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (endpointIds.length === 0) return out;
  const rows = await db
    .selectFrom('gw_webhook_secret')
    .select(['endpoint_id', 'sealed'])
    .where('endpoint_id', '=', sql<string>`any(${[...endpointIds]}::uuid[])`)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', sql<Date>`now()`)]))
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .execute();
  for (const r of rows) {
    const list = out.get(r.endpoint_id) ?? [];
    list.push(r.sealed);
    out.set(r.endpoint_id, list);
  }
  return out;
}

/** Enabled endpoints subscribed to this event type (empty `event_types`: every type). */
export function endpointsFor(
  db: WebhooksDb,
  eventType: string,
): Promise<{ id: string; ownerId: string }[]> {
  return db
    .selectFrom('gw_webhook_endpoint')
    .select(['id', 'owner_id as ownerId'])
    .where('enabled', '=', true)
    .where((eb) =>
      eb.or([
        eb(sql`cardinality(event_types)`, '=', 0),
        eb(sql.val(eventType), '=', sql<string>`any(event_types)`),
      ]),
    )
    .execute();
}

export interface NewMessage {
  id: string;
  endpointId: string;
  eventId: string;
  eventType: string;
  eventTime: Date;
  body: string;
  /** Too large to send: recorded as failed at once. */
  tooLarge?: boolean;
}

/**
 * Records messages, once per (event, endpoint): a repeated fan-out of the same event adds
 * nothing. Returns the ids of the messages created now that are to be delivered.
 */
export async function insertMessages(db: WebhooksDb, messages: readonly NewMessage[]) {
  if (messages.length === 0) return [];
  const rows = await db
    .insertInto('gw_webhook_message')
    .values(
      messages.map((m) => ({
        id: m.id,
        endpoint_id: m.endpointId,
        event_id: m.eventId,
        event_type: m.eventType,
        event_time: m.eventTime,
        body: m.tooLarge ? '' : m.body,
        status: m.tooLarge ? ('failed' as const) : ('pending' as const),
        next_attempt_at: m.tooLarge ? null : sql<Date>`now()`,
        last_error_class: m.tooLarge ? 'payload-too-large' : null,
        finished_at: m.tooLarge ? sql<Date>`now()` : null,
      })),
    )
    .onConflict((oc) => oc.constraint('gw_webhook_message_event_endpoint_key').doNothing())
    .returning(['id', 'status'])
    .execute();
  return rows.filter((r) => r.status === 'pending').map((r) => r.id);
}

/** A message of an endpoint, with the endpoint's owner. */
export function findMessage(db: WebhooksDb, id: string) {
  return db
    .selectFrom('gw_webhook_message as m')
    .innerJoin('gw_webhook_endpoint as e', 'e.id', 'm.endpoint_id')
    .select(['m.id', 'm.endpoint_id as endpointId', 'm.status', 'e.owner_id as ownerId'])
    .where('m.id', '=', id)
    .executeTakeFirst();
}

/** A message queued again: pending now, with a fresh retry schedule and no lease. */
const REQUEUED = {
  status: 'pending',
  round_attempts: 0,
  next_attempt_at: sql<Date>`now()`,
  locked_until: null,
  finished_at: null,
} as const;

/**
 * Queues a finished message again (a replay), with a fresh retry schedule. Returns false when
 * it is still pending (nothing to do) or unknown.
 */
export async function requeueMessage(db: WebhooksDb, id: string): Promise<boolean> {
  const r = await db
    .updateTable('gw_webhook_message')
    .set(REQUEUED)
    .where('id', '=', id)
    .where('status', '<>', 'pending')
    .where('body', '<>', '')
    .executeTakeFirst();
  return r.numUpdatedRows > 0n;
}

/** Queues again every failed message of an endpoint created since `since`; their ids. */
export async function requeueFailedSince(
  db: WebhooksDb,
  endpointId: string,
  since: Date,
): Promise<string[]> {
  const rows = await db
    .updateTable('gw_webhook_message')
    .set(REQUEUED)
    .where('endpoint_id', '=', endpointId)
    .where('status', '=', 'failed')
    .where('created_at', '>=', since)
    .where('body', '<>', '')
    .returning('id')
    .execute();
  return rows.map((r) => r.id);
}

const DELIVERY_COLUMNS = [
  'id',
  'event_id as eventId',
  'event_type as eventType',
  'event_time as eventTime',
  'status',
  'attempts',
  'next_attempt_at as nextAttemptAt',
  'last_status as lastStatus',
  'last_error_class as lastErrorClass',
  'created_at as createdAt',
  'finished_at as finishedAt',
] as const;

/** One page of an endpoint's messages, newest first, each with its attempts (oldest first). */
export async function listDeliveries(
  db: WebhooksDb,
  endpointId: string,
  query: Readonly<Record<string, unknown>>,
  options: PaginateOptions,
) {
  const list = parseListQuery(deliveryListSpec, query);
  const base = db
    .selectFrom('gw_webhook_message')
    .select(DELIVERY_COLUMNS)
    .where('endpoint_id', '=', endpointId);
  const page = await paginate(db, deliveryListSpec, list, base, options);
  const ids = page.items.map((m) => m.id);
  const attempts =
    ids.length === 0
      ? []
      : await db
          .selectFrom('gw_webhook_attempt')
          .select([
            'message_id as messageId',
            'attempted_at as attemptedAt',
            'outcome',
            'status_code as statusCode',
            'duration_ms as durationMs',
            'response_body as responseBody',
            'error_class as errorClass',
          ])
          .where('message_id', '=', sql<string>`any(${ids}::uuid[])`)
          .orderBy('attempted_at')
          .orderBy('id')
          .execute();
  const byMessage = new Map<string, typeof attempts>();
  for (const a of attempts) {
    const l = byMessage.get(a.messageId) ?? [];
    l.push(a);
    byMessage.set(a.messageId, l);
  }
  return {
    page: page.page,
    items: page.items.map((m) => ({ ...m, attemptLog: byMessage.get(m.id) ?? [] })),
  };
}

/** Deletes attempts and finished messages older than `retentionS`, in batches; rows removed. */
export async function purgeOld(db: WebhooksDb, retentionS: number, batch = 5_000) {
  const cutoff = sql<Date>`now() - make_interval(secs => ${retentionS})`;
  let removed = 0;
  for (;;) {
    const r = await sql<{ n: number }>`
      with gone as (
        delete from gw_webhook_attempt where id in (
          select id from gw_webhook_attempt where attempted_at < ${cutoff} limit ${batch})
        returning 1)
      select count(*)::int as n from gone`.execute(db);
    const n = r.rows[0]?.n ?? 0;
    removed += n;
    if (n < batch) break;
  }
  for (;;) {
    const r = await sql<{ n: number }>`
      with gone as (
        delete from gw_webhook_message where id in (
          select id from gw_webhook_message
           where created_at < ${cutoff} and status <> 'pending' limit ${batch})
        returning 1)
      select count(*)::int as n from gone`.execute(db);
    const n = r.rows[0]?.n ?? 0;
    removed += n;
    if (n < batch) break;
  }
  return removed;
}
