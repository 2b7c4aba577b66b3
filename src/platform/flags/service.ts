import { auditChanges, auditClient, recordAudit } from '../audit/index.ts';
import {
  isUniqueViolation,
  withTransaction,
  type Database,
  type PaginateOptions,
} from '../db/index.ts';
import { HttpError } from '../http/index.ts';
import {
  BOOLEAN_VARIANTS,
  definitionErrors,
  type FlagDefinition,
  type FlagValue,
} from './definition.ts';
import { FlagCodes } from './errors.ts';
import {
  deleteFlag,
  findFlag,
  insertFlag,
  listFlags,
  updateFlag,
  type FlagRow,
} from './repository.ts';
import type { CreateFlagBody, UpdateFlagBody } from './schemas.ts';
import type { FlagStore } from './store.ts';
import { flagsDb } from './tables.ts';

/** The permission of the admin API (granted to the built-in `admin` role by default). */
export const FLAGS_ADMIN_PERMISSION = 'flags:admin';

/** Who acts, for the audit trail. */
export interface FlagActor {
  userId: string | null;
  ip?: string | null;
  requestId?: string | null;
}

/** What the audit trail keeps of a flag: its whole definition (no secret in it). */
function audited(flag: FlagDefinition): Record<string, unknown> {
  return {
    description: flag.description,
    type: flag.type,
    enabled: flag.enabled,
    variants: flag.variants,
    defaultVariant: flag.defaultVariant,
    environments: flag.environments,
    overrides: flag.overrides,
  };
}

function definitionOf(row: FlagRow): FlagDefinition {
  return {
    key: row.key,
    description: row.description,
    type: row.type,
    enabled: row.enabled,
    variants: row.variants,
    defaultVariant: row.defaultVariant,
    environments: row.environments,
    overrides: row.overrides,
  };
}

function check(flag: FlagDefinition): void {
  const errors = definitionErrors(flag);
  if (errors.length > 0)
    throw new HttpError(FlagCodes.FLAG_DEFINITION_INVALID, {
      detail: errors.map((e) => `${e.path} ${e.message}`).join('; '),
      errors,
    });
}

/**
 * The admin side of feature flags: create, change and delete definitions, each audited in its
 * transaction; after the commit the store's caches are invalidated in every process.
 */
export class FlagAdminService {
  readonly #database: Database;
  readonly #store: FlagStore;
  readonly #paging: PaginateOptions;

  constructor(options: { database: Database; store: FlagStore; paging: PaginateOptions }) {
    this.#database = options.database;
    this.#store = options.store;
    this.#paging = options.paging;
  }

  list(query: Readonly<Record<string, unknown>>) {
    return listFlags(flagsDb(this.#database.db), query, this.#paging);
  }

  async get(key: string): Promise<FlagRow> {
    const row = await findFlag(flagsDb(this.#database.db), key);
    if (!row) throw new HttpError(FlagCodes.FLAG_NOT_FOUND);
    return row;
  }

  async create(actor: FlagActor, input: CreateFlagBody): Promise<FlagRow> {
    const type = input.type ?? 'boolean';
    const boolean = type === 'boolean';
    if (!boolean && (input.variants === undefined || input.defaultVariant === undefined))
      throw new HttpError(FlagCodes.FLAG_DEFINITION_INVALID, {
        detail: `A ${type} flag needs its variants and a defaultVariant.`,
        errors: [
          ...(input.variants === undefined
            ? [{ path: '/body/variants', message: 'is required' }]
            : []),
          ...(input.defaultVariant === undefined
            ? [{ path: '/body/defaultVariant', message: 'is required' }]
            : []),
        ],
      });
    const flag: FlagDefinition = {
      key: input.key,
      description: input.description ?? '',
      type,
      enabled: input.enabled ?? true,
      variants: (input.variants as Record<string, FlagValue> | undefined) ?? {
        ...BOOLEAN_VARIANTS,
      },
      defaultVariant: input.defaultVariant ?? 'off',
      environments: input.environments ?? {},
      overrides: input.overrides ?? [],
    };
    check(flag);
    let row: FlagRow;
    try {
      row = await withTransaction(this.#database.db, async (trx) => {
        const created = await insertFlag(flagsDb(trx), flag, actor.userId);
        await recordAudit(trx, {
          actorId: actor.userId,
          ...auditClient(actor),
          action: 'admin.flag.create',
          subjectType: 'feature_flag',
          subjectId: flag.key,
          data: audited(flag),
        });
        return created;
      });
    } catch (error) {
      if (isUniqueViolation(error, 'gw_feature_flag_pkey'))
        throw new HttpError(FlagCodes.FLAG_KEY_TAKEN, {
          detail: `A feature flag with the key ${flag.key} exists already.`,
          cause: error,
        });
      throw error;
    }
    await this.#store.invalidate();
    return row;
  }

  async update(actor: FlagActor, key: string, change: UpdateFlagBody): Promise<FlagRow> {
    const row = await withTransaction(this.#database.db, async (trx) => {
      const db = flagsDb(trx);
      const current = await findFlag(db, key, { forUpdate: true });
      if (!current) throw new HttpError(FlagCodes.FLAG_NOT_FOUND);
      const before = definitionOf(current);
      const after: FlagDefinition = {
        ...before,
        ...(change.description === undefined ? {} : { description: change.description }),
        ...(change.type === undefined ? {} : { type: change.type }),
        ...(change.enabled === undefined ? {} : { enabled: change.enabled }),
        ...(change.variants === undefined
          ? {}
          : { variants: change.variants as Record<string, FlagValue> }),
        ...(change.defaultVariant === undefined ? {} : { defaultVariant: change.defaultVariant }),
        ...(change.environments === undefined ? {} : { environments: change.environments }),
        ...(change.overrides === undefined ? {} : { overrides: change.overrides }),
      };
      check(after);
      const updated = await updateFlag(db, after, actor.userId);
      await recordAudit(trx, {
        actorId: actor.userId,
        ...auditClient(actor),
        action: 'admin.flag.update',
        subjectType: 'feature_flag',
        subjectId: key,
        data: { changes: auditChanges(audited(before), audited(after)) },
      });
      return updated;
    });
    await this.#store.invalidate();
    return row;
  }

  async remove(actor: FlagActor, key: string): Promise<void> {
    await withTransaction(this.#database.db, async (trx) => {
      const db = flagsDb(trx);
      const current = await findFlag(db, key, { forUpdate: true });
      if (!current || !(await deleteFlag(db, key))) throw new HttpError(FlagCodes.FLAG_NOT_FOUND);
      await recordAudit(trx, {
        actorId: actor.userId,
        ...auditClient(actor),
        action: 'admin.flag.delete',
        subjectType: 'feature_flag',
        subjectId: key,
        data: audited(definitionOf(current)),
      });
    });
    await this.#store.invalidate();
  }
}
