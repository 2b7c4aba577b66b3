import type { ColumnType } from 'kysely';

type ReadOnlyTimestamp = ColumnType<Date, never, never>;

/** The outbox: one row per published event, written in the publishing transaction. */
export interface EventTable {
  id: string;
  type: string;
  version: number;
  occurred_at: ColumnType<Date, never, never>;
  subject_type: string | null;
  subject_id: string | null;
  actor_id: string | null;
  owner_id: string | null;
  request_id: string | null;
  data: ColumnType<unknown, string, never>;
  /** When the dispatcher made its subscribers' delivery rows; null: not yet. */
  dispatched_at: ColumnType<Date | null, never, Date>;
}

export type EventDeliveryState = 'pending' | 'done' | 'failed';

/** One row per (event, subscriber): the durable record of its hand-over. */
export interface EventDeliveryTable {
  event_id: string;
  subscriber: string;
  state: ColumnType<EventDeliveryState, EventDeliveryState | undefined, EventDeliveryState>;
  attempts: ColumnType<number, number | undefined, number>;
  /** When it may be claimed next (a claim sets it to the end of its lease). */
  due_at: ColumnType<Date, Date | undefined, Date>;
  last_error: string | null;
  completed_at: ReadOnlyTimestamp | null;
}

/** The events area's tables. */
export interface EventsTables {
  gw_event: EventTable;
  gw_event_delivery: EventDeliveryTable;
}
