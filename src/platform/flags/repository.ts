import { paginate, parseListQuery, type ListSpec, type PaginateOptions } from '../db/index.ts';
import type { FlagDefinition } from './definition.ts';
import type { FlagsDb } from './tables.ts';

/** A flag as the admin API shows it: the definition and when it changed. */
export interface FlagRow extends FlagDefinition {
  createdAt: Date;
  updatedAt: Date;
}

const COLUMNS = [
  'key',
  'description',
  'type',
  'enabled',
  'variants',
  'default_variant as defaultVariant',
  'environments',
  'overrides',
  'created_at as createdAt',
  'updated_at as updatedAt',
] as const;

/** `GET /admin/flags`: by key, or most recently changed first; filtered by `enabled`. */
export const flagListSpec: ListSpec = {
  name: 'feature-flags',
  sorts: { key: 'key', updatedAt: 'updated_at' },
  defaultSort: 'key',
  idColumn: 'key',
  filters: {
    enabled: { column: 'enabled', type: 'boolean', ops: ['eq'] },
    type: { column: 'type', type: 'string', ops: ['eq', 'in'] },
  },
};

/** Every flag's definition: what the provider caches (a few hundred rows at most in practice). */
export function allFlags(db: FlagsDb): Promise<FlagDefinition[]> {
  return db
    .selectFrom('gw_feature_flag')
    .select([
      'key',
      'description',
      'type',
      'enabled',
      'variants',
      'default_variant as defaultVariant',
      'environments',
      'overrides',
    ])
    .orderBy('key')
    .execute();
}

export function listFlags(
  db: FlagsDb,
  query: Readonly<Record<string, unknown>>,
  options: PaginateOptions,
) {
  const list = parseListQuery(flagListSpec, query);
  return paginate(
    db,
    flagListSpec,
    list,
    db.selectFrom('gw_feature_flag').select(COLUMNS),
    options,
  );
}

/** The flag, locked for the rest of the transaction when `forUpdate`. */
export function findFlag(
  db: FlagsDb,
  key: string,
  options: { forUpdate?: boolean } = {},
): Promise<FlagRow | undefined> {
  const query = db.selectFrom('gw_feature_flag').select(COLUMNS).where('key', '=', key);
  return (options.forUpdate ? query.forUpdate() : query).executeTakeFirst();
}

function columns(flag: FlagDefinition) {
  return {
    description: flag.description,
    type: flag.type,
    enabled: flag.enabled,
    variants: JSON.stringify(flag.variants),
    default_variant: flag.defaultVariant,
    environments: JSON.stringify(flag.environments),
    overrides: JSON.stringify(flag.overrides),
  };
}

/** Inserts a flag; a taken key is a unique violation of `gw_feature_flag_pkey`. */
export function insertFlag(db: FlagsDb, flag: FlagDefinition, actorId: string | null) {
  return db
    .insertInto('gw_feature_flag')
    .values({ key: flag.key, ...columns(flag), created_by: actorId, updated_by: actorId })
    .returning(COLUMNS)
    .executeTakeFirstOrThrow();
}

export function updateFlag(db: FlagsDb, flag: FlagDefinition, actorId: string | null) {
  return db
    .updateTable('gw_feature_flag')
    .set({ ...columns(flag), updated_by: actorId })
    .where('key', '=', flag.key)
    .returning(COLUMNS)
    .executeTakeFirstOrThrow();
}

/** Deletes a flag; false when there was none. */
export async function deleteFlag(db: FlagsDb, key: string): Promise<boolean> {
  const result = await db.deleteFrom('gw_feature_flag').where('key', '=', key).executeTakeFirst();
  return result.numDeletedRows > 0n;
}
