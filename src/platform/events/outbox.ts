import { sql } from 'kysely';
import { Counter, Gauge, type Registry } from 'prom-client';
import { executePrepared, newId, tablesOf, type AnyDb, type Database } from '../db/index.ts';
import { eventPayloadErrors, InvalidEventPayloadError, subscribes } from './define.ts';
import type { EventsTables } from './tables.ts';
import type { EventSubscriber, EventType, Events, NewEvent } from './types.ts';

/** The channel a publishing transaction notifies (at its commit) to wake the dispatchers. */
export const EVENTS_CHANNEL = 'gw_events';

/**
 * Writes one event into the outbox in the caller's transaction, after checking its payload, and
 * notifies the dispatchers (PostgreSQL delivers the notification at commit, and drops it with a
 * rollback; several in one transaction fold into one). One statement.
 */
export async function writeEvent<P>(
  trx: AnyDb,
  type: EventType<P>,
  event: NewEvent<P>,
): Promise<{ id: string }> {
  const errors = eventPayloadErrors(type, event.data);
  if (errors.length > 0) throw new InvalidEventPayloadError(type.type, errors);
  const id = newId();
  const subject = event.subject ?? null;
  // A named prepared statement (platform/db/prepared.ts): written in the transaction of every
  // change that publishes, it is planned once per connection.
  const db = tablesOf<EventsTables>(trx);
  await executePrepared(
    db,
    db
      .with('e', (db) =>
        db
          .insertInto('gw_event')
          .values({
            id,
            type: type.type,
            version: type.version,
            subject_type: subject?.type ?? null,
            subject_id: subject?.id ?? null,
            actor_id: event.actorId ?? null,
            owner_id: event.ownerId ?? null,
            request_id: event.requestId ?? null,
            data: JSON.stringify(event.data),
          })
          .returning('id'),
      )
      .selectFrom('e')
      .select(sql<string>`pg_notify(${EVENTS_CHANNEL}, '')`.as('notified')),
  );
  return { id };
}

/**
 * The statement `writeEvent` runs, for no row (and so no notification): for a path that must take
 * the time of one that publishes, where the difference would tell a client something (registering
 * with a taken address takes the steps of a new one). Without it that answer came about 0.6 ms
 * sooner than a new address's (test/integration/identity-timing.test.ts).
 */
export async function mirrorEventWrite(trx: AnyDb): Promise<void> {
  const db = tablesOf<EventsTables>(trx);
  await executePrepared(
    db,
    db
      .with('e', (db) =>
        db
          .insertInto('gw_event')
          .columns(['id', 'type', 'version', 'data'])
          .expression(
            db
              .selectNoFrom([
                sql<string>`${newId()}::uuid`.as('id'),
                sql<string>`''`.as('type'),
                sql<number>`0`.as('version'),
                sql<string>`'{}'::jsonb`.as('data'),
              ])
              .where(sql<boolean>`false`),
          )
          .returning('id'),
      )
      .selectFrom('e')
      .select(sql<string>`pg_notify(${EVENTS_CHANNEL}, '')`.as('notified')),
  );
}

/** What a module declares about events, as the registry collects it. */
export interface EventDeclarations {
  readonly module: string;
  readonly events?: readonly EventType[];
  readonly subscribers?: readonly EventSubscriber[];
}

/** Every event type and subscriber of the enabled modules, checked for clashes. */
export interface EventRegistry {
  readonly types: readonly EventType[];
  readonly subscribers: readonly EventSubscriber[];
}

/**
 * Collects the modules' event types and subscribers. Two modules declaring one event type or
 * one subscriber name, or a subscriber naming a type no enabled module declares, is an error
 * naming them (the process refuses to start).
 */
export function eventRegistry(declarations: readonly EventDeclarations[]): EventRegistry {
  const types = new Map<string, { module: string; type: EventType }>();
  const subscribers = new Map<string, { module: string; subscriber: EventSubscriber }>();
  for (const d of declarations) {
    for (const type of d.events ?? []) {
      const seen = types.get(type.type);
      if (seen)
        throw new Error(
          `event type ${type.type} is declared twice: by module ${seen.module} and by module ${d.module}`,
        );
      types.set(type.type, { module: d.module, type });
    }
    for (const subscriber of d.subscribers ?? []) {
      const seen = subscribers.get(subscriber.name);
      if (seen)
        throw new Error(
          `event subscriber ${subscriber.name} is declared twice: by module ${seen.module} and by module ${d.module}`,
        );
      subscribers.set(subscriber.name, { module: d.module, subscriber });
    }
  }
  for (const { module, subscriber } of subscribers.values()) {
    if (subscriber.events === '*') continue;
    const unknown = subscriber.events.filter((t) => !types.has(t));
    if (unknown.length > 0)
      throw new Error(
        `event subscriber ${subscriber.name} (module ${module}) wants ${unknown.join(', ')}, which no enabled module declares`,
      );
  }
  return {
    types: [...types.values()].map((t) => t.type).sort((a, b) => a.type.localeCompare(b.type)),
    subscribers: [...subscribers.values()].map((s) => s.subscriber),
  };
}

/** The subscribers that want events of this type. */
export function subscribersOf(registry: EventRegistry, type: string): EventSubscriber[] {
  return registry.subscribers.filter((s) => subscribes(s, type));
}

/** A metric of this name in the registry, or a new one (two platforms may share a registry). */
export function counter<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[],
): Counter<L> {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<L>;
  return new Counter({ name, help, labelNames, registers: [registry] });
}

/** `platform.events`: publishing into the outbox, and the catalog of the enabled modules' types. */
export class EventBus implements Events {
  readonly #registry: EventRegistry;
  readonly #published: Counter<'type'> | undefined;

  constructor(options: { registry: EventRegistry; metrics?: Registry; database?: Database }) {
    this.#registry = options.registry;
    if (options.metrics && options.database) backlogGauges(options.metrics, options.database);
    this.#published = options.metrics
      ? counter(
          options.metrics,
          'events_published_total',
          'Domain events written to the outbox, by type (counted at publish: a rolled-back transaction counts too)',
          ['type'],
        )
      : undefined;
  }

  async publish<P>(trx: AnyDb, type: EventType<P>, event: NewEvent<P>): Promise<{ id: string }> {
    const written = await writeEvent(trx, type, event);
    this.#published?.inc({ type: type.type });
    return written;
  }

  types(): readonly EventType[] {
    return this.#registry.types;
  }

  /** Every subscriber of the enabled modules. */
  subscribers(): readonly EventSubscriber[] {
    return this.#registry.subscribers;
  }
}

/**
 * The dispatch backlog, read from the database at scrape time (true across every process):
 * events not yet fanned out, hand-overs waiting (new or to retry), and the age of the oldest due
 * one. A dispatcher that stopped shows here, where the lag histogram would only go quiet.
 */
function backlogGauges(registry: Registry, database: Database): void {
  if (registry.getSingleMetric('events_backlog')) return;
  let pending: Promise<{ undispatched: number; waiting: number; oldest: number }> | null = null;
  const read = () =>
    (pending ??= database.pool
      .query<{ undispatched: number; waiting: number; oldest: number | null }>(
        `select (select count(*) from gw_event where dispatched_at is null)::int as undispatched,
                (select count(*) from gw_event_delivery where state = 'pending')::int as waiting,
                extract(epoch from now() - least(
                  (select min(occurred_at) from gw_event where dispatched_at is null),
                  (select min(due_at) from gw_event_delivery
                    where state = 'pending' and due_at <= now())))::float8 as oldest`,
      )
      .then(({ rows }) => ({
        undispatched: rows[0]?.undispatched ?? 0,
        waiting: rows[0]?.waiting ?? 0,
        oldest: Math.max(0, rows[0]?.oldest ?? 0),
      }))
      .finally(() => {
        pending = null;
      }));
  new Gauge({
    name: 'events_backlog',
    help: 'Events not yet fanned out to subscribers (stage="undispatched") and hand-overs waiting to run or be retried (stage="pending")',
    labelNames: ['stage'],
    registers: [registry],
    async collect() {
      const b = await read().catch(() => null);
      if (!b) return;
      this.set({ stage: 'undispatched' }, b.undispatched);
      this.set({ stage: 'pending' }, b.waiting);
    },
  });
  new Gauge({
    name: 'events_oldest_waiting_seconds',
    help: 'Seconds the oldest event waiting to be fanned out, or hand-over due, has waited',
    registers: [registry],
    async collect() {
      const b = await read().catch(() => null);
      if (b) this.set(b.oldest);
    },
  });
}
