import type { Static, TSchema } from 'typebox';
import type { AnyDb } from '../db/index.ts';
import type { Logger } from '../observability/index.ts';

/**
 * A domain event type a module declares (`defineEvent`): its name (`area.thing.happened`), the
 * version of its payload, the payload's TypeBox schema and an example (for the event catalog and
 * the webhook docs), and who may see an event of the type.
 */
export interface EventType<P = unknown> {
  readonly type: string;
  readonly version: number;
  readonly description: string;
  readonly payload: TSchema;
  readonly example: P;
  /**
   * Who may receive events of this type (webhooks, realtime): holders of `permission` see every
   * event of the type; the user an event concerns (`ownerId`) sees it too unless `ownerVisible`
   * is false.
   */
  readonly visibility: { readonly permission: string; readonly ownerVisible: boolean };
}

/** The payload type of an event type. */
export type EventPayload<E> = E extends EventType<infer P> ? P : never;

/** A published event, as subscribers and webhook receivers see it. */
export interface DomainEvent<P = unknown> {
  /** UUID v7: consumers are idempotent by it. */
  readonly id: string;
  readonly type: string;
  readonly version: number;
  readonly occurredAt: Date;
  /** What it happened to (`{ type: 'user', id }`), when there is one. */
  readonly subject: { readonly type: string; readonly id: string } | null;
  /** Who did it; null for the system. */
  readonly actorId: string | null;
  /** The user the event concerns (its audience besides permission holders); null: none. */
  readonly ownerId: string | null;
  readonly requestId: string | null;
  readonly data: P;
}

/** What `publish` takes besides the type. */
export interface NewEvent<P> {
  readonly data: P;
  readonly subject?: { readonly type: string; readonly id: string } | null;
  readonly actorId?: string | null;
  readonly ownerId?: string | null;
  readonly requestId?: string | null;
}

/**
 * The platform's services as a subscriber sees them. Empty here: the modules area fills it in
 * with its `Platform` (declaration merging), since this area comes before the modules area.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface EventPlatform {}

/** What a subscriber's handler receives besides the event. */
export interface SubscriberContext {
  readonly log: Logger;
  /**
   * Aborted when the process shuts down or the handler's time is up: stop and let the event be
   * handed over again.
   */
  readonly signal: AbortSignal;
  /** 1 on the first hand-over of this event to this subscriber, 2 on the first retry... */
  readonly attempt: number;
  /** The platform's services (`database`, `jobs`, `mail`, `upstream`...). */
  readonly platform: EventPlatform;
}

/**
 * An in-process consumer of committed events, declared by a module (`subscribers`). It gets each
 * event of its types at least once, after the publishing transaction committed; a handler that
 * returned is not called again for that event. Handlers are idempotent by `event.id` (a crash
 * between the work and its record hands the event over again).
 */
export interface EventSubscriber {
  /** Unique across modules, e.g. `webhooks.fan-out`. */
  readonly name: string;
  /** Event types it wants, or `*` for every type. */
  readonly events: readonly string[] | '*';
  handle(event: DomainEvent, ctx: SubscriberContext): Promise<void>;
}

/** The platform's events service (`platform.events`). */
export interface Events {
  /**
   * Writes the event in the caller's transaction (the outbox): it exists if and only if the
   * transaction commits; it is dispatched to subscribers after the commit. The payload is
   * validated against the type's schema (a mismatch is a programming error and throws).
   */
  publish<P>(trx: AnyDb, type: EventType<P>, event: NewEvent<P>): Promise<{ id: string }>;
  /** Every event type the enabled modules declare, sorted by name. */
  types(): readonly EventType[];
}

/** The payload type of a schema (helper for `defineEvent`). */
export type PayloadOf<S extends TSchema> = Static<S>;
