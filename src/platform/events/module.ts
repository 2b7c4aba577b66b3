import { sql } from 'kysely';
import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';
import { defineJob, type AnyJob } from '../jobs/index.ts';
import { DISPATCHER_DEFAULTS, type DispatcherSettings } from './dispatcher.ts';

/** The events area's settings (`EVENTS_*`), validated with the platform's at start. */
export const EventsSettingsSchema = Type.Object({
  EVENTS_RETENTION_DAYS: Type.Integer({
    default: 30,
    minimum: 1,
    maximum: 3_650,
    description:
      'Days a published event and the record of its hand-overs are kept, then purged daily (events still waiting for a subscriber are kept).',
  }),
  EVENTS_CONCURRENCY: Type.Integer({
    default: DISPATCHER_DEFAULTS.concurrency,
    minimum: 1,
    maximum: 1_000,
    description: 'Subscriber handlers running at once in each worker process.',
  }),
  EVENTS_BATCH_SIZE: Type.Integer({
    default: DISPATCHER_DEFAULTS.batchSize,
    minimum: 1,
    maximum: 1_000,
    description: 'Events fanned out, and hand-overs claimed, per database round trip.',
  }),
  EVENTS_POLL_INTERVAL_MS: Type.Integer({
    default: DISPATCHER_DEFAULTS.pollIntervalMs,
    minimum: 50,
    maximum: 60_000,
    description:
      'Polling fallback of the dispatcher (commits wake it at once through NOTIFY; retries and expired claims are found by polling).',
  }),
  EVENTS_HANDLER_TIMEOUT_MS: Type.Integer({
    default: DISPATCHER_DEFAULTS.handlerTimeoutMs,
    minimum: 100,
    maximum: 3_600_000,
    description: 'A subscriber handler running longer fails and is retried.',
  }),
  EVENTS_MAX_ATTEMPTS: Type.Integer({
    default: DISPATCHER_DEFAULTS.maxAttempts,
    minimum: 1,
    maximum: 100,
    description:
      'Hand-overs of one event to one subscriber before it is recorded as failed (logged, counted in events_dispatched_total{outcome="failed"}).',
  }),
  EVENTS_RETRY_INITIAL_MS: Type.Integer({
    default: DISPATCHER_DEFAULTS.retryInitialMs,
    minimum: 10,
    maximum: 3_600_000,
    description: 'Delay before the first retry of a failed handler; doubled each time, jittered.',
  }),
  EVENTS_RETRY_MAX_MS: Type.Integer({
    default: DISPATCHER_DEFAULTS.retryMaxMs,
    minimum: 10,
    maximum: 86_400_000,
    description: 'The longest delay between two retries of a failed handler.',
  }),
});

export type EventsSettings = Static<typeof EventsSettingsSchema>;

/** The module's parsed settings (defaults where the configuration has none: a fixture's config). */
export function eventsSettings(values: unknown): EventsSettings {
  const given = typeof values === 'object' && values !== null ? values : {};
  const parsed: unknown = Value.Default(EventsSettingsSchema, { ...given });
  return Value.Parse(EventsSettingsSchema, parsed);
}

/** The dispatcher's settings from the module's. */
export function dispatcherSettings(settings: EventsSettings): DispatcherSettings {
  return {
    concurrency: settings.EVENTS_CONCURRENCY,
    batchSize: settings.EVENTS_BATCH_SIZE,
    pollIntervalMs: settings.EVENTS_POLL_INTERVAL_MS,
    handlerTimeoutMs: settings.EVENTS_HANDLER_TIMEOUT_MS,
    maxAttempts: settings.EVENTS_MAX_ATTEMPTS,
    retryInitialMs: settings.EVENTS_RETRY_INITIAL_MS,
    retryMaxMs: Math.max(settings.EVENTS_RETRY_MAX_MS, settings.EVENTS_RETRY_INITIAL_MS),
  };
}

const PURGE_BATCH = 5_000;

/**
 * Daily purge of events older than the retention, with their hand-over records; an event one of
 * whose subscribers still waits for it is kept. In batches, so no statement holds many locks.
 */
export function purgeEventsJob(retentionDays: number) {
  return defineJob({
    name: 'platform.events-purge',
    payload: Type.Object({}),
    handler: async (_payload, ctx) => {
      let deleted = 0;
      for (;;) {
        if (ctx.signal.aborted) break;
        const result = await sql`
          delete from gw_event where id in (
            select e.id from gw_event e
             where e.occurred_at < now() - ${retentionDays} * interval '1 day'
               and e.dispatched_at is not null
               and not exists (select 1 from gw_event_delivery d
                                where d.event_id = e.id and d.state = 'pending')
             limit ${PURGE_BATCH})`.execute(ctx.db);
        const n = Number(result.numAffectedRows ?? 0);
        deleted += n;
        if (n < PURGE_BATCH) break;
      }
      if (deleted > 0) ctx.log.info({ deleted }, 'old events purged');
      return { deleted };
    },
    options: { cron: { expression: '23 4 * * *', payload: {} }, retries: 1 },
  });
}

/**
 * The events area on the module shape (its settings and purge job). A plain object, since this
 * area comes before the modules area: the runtime lists it through `defineModule`.
 */
export const eventsModule = {
  name: 'events',
  description: 'Domain events: the outbox, the dispatcher to subscribers, retention.',
  tags: [],
  config: EventsSettingsSchema,
  // Parsed again with defaults: a configuration loaded without this module's slice still works.
  jobs: ({ config }: { config: unknown }): readonly AnyJob[] => [
    purgeEventsJob(eventsSettings(config).EVENTS_RETENTION_DAYS),
  ],
};
