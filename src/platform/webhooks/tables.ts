import type { ColumnType, Generated, Kysely } from 'kysely';
import { tablesOf, type AnyDb } from '../db/index.ts';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type NullableTime = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;

/** Message states: waiting (or being attempted), delivered, given up. */
export type MessageStatus = 'pending' | 'succeeded' | 'failed';

/** The webhooks module's tables: its own view of the database (`tablesOf`). */
export interface WebhooksTables {
  gw_webhook_endpoint: {
    id: string;
    owner_id: string;
    url: string;
    description: Generated<string>;
    event_types: Generated<string[]>;
    enabled: Generated<boolean>;
    ordered: Generated<boolean>;
    rate_limit_per_second: number | null;
    disabled_reason: string | null;
    disabled_at: NullableTime;
    failing_since: NullableTime;
    created_at: Generated<Date>;
    updated_at: Generated<Date>;
  };
  gw_webhook_secret: {
    id: string;
    endpoint_id: string;
    sealed: string;
    created_at: Generated<Date>;
    expires_at: NullableTime;
  };
  gw_webhook_message: {
    id: string;
    seq: Generated<string>;
    endpoint_id: string;
    event_id: string;
    event_type: string;
    event_time: Timestamp;
    body: string;
    status: MessageStatus;
    attempts: Generated<number>;
    round_attempts: Generated<number>;
    next_attempt_at: NullableTime;
    locked_until: NullableTime;
    last_status: number | null;
    last_error_class: string | null;
    created_at: Generated<Date>;
    first_attempt_at: NullableTime;
    finished_at: NullableTime;
  };
  gw_webhook_attempt: {
    id: string;
    message_id: string;
    endpoint_id: string;
    attempted_at: Timestamp;
    outcome: string;
    status_code: number | null;
    duration_ms: number;
    response_body: Generated<string>;
    error_class: string | null;
  };
}

export type WebhooksDb = Kysely<WebhooksTables>;

/** The database (or a transaction on it) seen through the webhooks tables. */
export function webhooksDb(db: AnyDb): WebhooksDb {
  return tablesOf<WebhooksTables>(db);
}
