import { newId, tablesOf, type AnyDb } from '../db/index.ts';
import type { AuditTables } from './tables.ts';

/**
 * Who did what, written in the same transaction as the change it records (pass the
 * transaction as `db`): a rolled-back change leaves no event, a committed one always has one.
 * `action` is dotted lowercase (`auth.login.success`, `admin.user.lock`); `data` holds ids and
 * settings, never secrets and never personal data beyond the ids (the trail outlives accounts).
 */
export interface AuditEvent {
  action: string;
  /** The account acting; null for anonymous or system actions. */
  actorId?: string | null;
  /** What the action was done to, e.g. `user` and its id. */
  subjectType?: string | null;
  subjectId?: string | null;
  ip?: string | null;
  requestId?: string | null;
  data?: Record<string, unknown>;
  /** When it happened (default: the transaction's start, `now()`); the buffer stamps its events. */
  occurredAt?: Date;
}

/** A stored audit event. */
export interface AuditRecord {
  id: string;
  occurredAt: Date;
  action: string;
  actorId: string | null;
  subjectType: string | null;
  subjectId: string | null;
  ip: string | null;
  requestId: string | null;
  data: Record<string, unknown>;
}

/** The request facts every audit event carries, from a Fastify request or a job. */
export interface AuditContext {
  actorId?: string | null;
  ip?: string | null;
  requestId?: string | null;
}

/**
 * The request fields of an audit event (`ip`, `requestId`) from the client a request came
 * from; without one (a job, the operator's CLI) both are null. Spread it into the event.
 */
export function auditClient(
  client: Pick<AuditContext, 'ip' | 'requestId'> | null | undefined,
): Required<Pick<AuditEvent, 'ip' | 'requestId'>> {
  return { ip: client?.ip ?? null, requestId: client?.requestId ?? null };
}

/** Appends one event; call it with the transaction of the change it records. */
export async function recordAudit(db: AnyDb, event: AuditEvent): Promise<void> {
  await recordAudits(db, [event]);
}

/** Appends several events in one statement. */
export async function recordAudits(db: AnyDb, events: readonly AuditEvent[]): Promise<void> {
  if (events.length === 0) return;
  await tablesOf<AuditTables>(db)
    .insertInto('gw_audit_event')
    .values(
      events.map((e) => ({
        id: newId(),
        action: e.action,
        actor_id: e.actorId ?? null,
        subject_type: e.subjectType ?? null,
        subject_id: e.subjectId ?? null,
        ip: e.ip ?? null,
        request_id: e.requestId ?? null,
        data: JSON.stringify(e.data ?? {}),
        ...(e.occurredAt ? { occurred_at: e.occurredAt } : {}),
      })),
    )
    .execute();
}

/** The stored events with their API field names: the base of every listing of the trail. */
export function auditEventsQuery(db: AnyDb) {
  return tablesOf<AuditTables>(db)
    .selectFrom('gw_audit_event')
    .select([
      'id',
      'occurred_at as occurredAt',
      'action',
      'actor_id as actorId',
      'subject_type as subjectType',
      'subject_id as subjectId',
      'ip',
      'request_id as requestId',
      'data',
    ]);
}

/** Newest first, optionally for one actor, subject or action; for the admin API and tests. */
export async function listAuditEvents(
  db: AnyDb,
  filter: {
    actorId?: string;
    subjectType?: string;
    subjectId?: string;
    action?: string;
    limit?: number;
  } = {},
): Promise<AuditRecord[]> {
  let query = auditEventsQuery(db)
    .orderBy('occurred_at', 'desc')
    .orderBy('id', 'desc')
    .limit(filter.limit ?? 100);
  if (filter.actorId) query = query.where('actor_id', '=', filter.actorId);
  if (filter.subjectType) query = query.where('subject_type', '=', filter.subjectType);
  if (filter.subjectId) query = query.where('subject_id', '=', filter.subjectId);
  if (filter.action) query = query.where('action', '=', filter.action);
  return query.execute();
}
