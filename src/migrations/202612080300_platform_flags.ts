import { sql, type Kysely } from 'kysely';
import { addUpdatedAtTrigger } from '../platform/db/index.ts';

/**
 * Feature flags (src/platform/flags): one row per flag, keyed by its key. Variants, the rules of
 * each environment and the per-user overrides are jsonb, read whole with the flag: the provider
 * loads every flag at once into its cache, so no query filters inside them.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('gw_feature_flag')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('type', 'text', (c) =>
      c.notNull().check(sql`type in ('boolean', 'string', 'number', 'object')`),
    )
    .addColumn('enabled', 'boolean', (c) => c.notNull().defaultTo(true))
    // { "<variant>": <value>, ... }
    .addColumn('variants', 'jsonb', (c) => c.notNull())
    .addColumn('default_variant', 'text', (c) => c.notNull())
    // { "<APP_ENV>": { "defaultVariant"?: "...", "rollout"?: { "variant": "...", "percentage": 0-100 } } }
    .addColumn('environments', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    // [{ "userId": "<uuid>", "variant": "..." }, ...]
    .addColumn('overrides', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('created_by', 'uuid')
    .addColumn('updated_by', 'uuid')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await addUpdatedAtTrigger(db, 'gw_feature_flag');
  // The admin listing's second order (most recently changed first), keyed by the key after it.
  await sql`create index gw_feature_flag_updated_idx on gw_feature_flag (updated_at, key)`.execute(
    db,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('gw_feature_flag').execute(); // its trigger and index go with it
}
