import type { ColumnType, Generated, Kysely } from 'kysely';
import { tablesOf, type AnyDb } from '../db/index.ts';
import type { EnvironmentRules, FlagOverride, FlagType, FlagValue } from './definition.ts';

/** jsonb: written as a JSON string, read as the parsed value. */
type Json<T> = ColumnType<T, string, string>;

/** The flags area's table: its own view of the database (`tablesOf`). */
export interface FlagsTables {
  gw_feature_flag: {
    key: string;
    description: Generated<string>;
    type: FlagType;
    enabled: Generated<boolean>;
    variants: Json<Record<string, FlagValue>>;
    default_variant: string;
    environments: Json<EnvironmentRules>;
    overrides: Json<FlagOverride[]>;
    created_by: string | null;
    updated_by: string | null;
    created_at: Generated<Date>;
    updated_at: Generated<Date>;
  };
}

export type FlagsDb = Kysely<FlagsTables>;

/** The database (or a transaction on it) seen through the flags table. */
export function flagsDb(db: AnyDb): FlagsDb {
  return tablesOf<FlagsTables>(db);
}
