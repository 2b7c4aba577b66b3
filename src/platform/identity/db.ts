import type { Kysely } from 'kysely';
import { tablesOf, type AnyDb } from '../db/index.ts';
import type { AccountsTables } from './accounts/tables.ts';
import type { MfaTables } from './mfa/tables.ts';
import type { OidcTables } from './oidc/tables.ts';
import type { RbacTables } from './rbac/tables.ts';
import type { CoreTables } from './tables.ts';

/** Identity's tables: the module's own view of the database; no other module names them. */
export interface IdentityTables
  extends CoreTables, AccountsTables, MfaTables, OidcTables, RbacTables {}

/** Identity's view of the database, or of the caller's transaction. */
export type IdentityDb = Kysely<IdentityTables>;

/** The database (or a transaction on it) seen through identity's tables. */
export function identityDb(db: AnyDb): IdentityDb {
  return tablesOf<IdentityTables>(db);
}
