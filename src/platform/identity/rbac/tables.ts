import type { ColumnType } from 'kysely';

type Defaulted<T> = ColumnType<T, T | undefined, T>;
type CreatedAt = ColumnType<Date, never, never>;

/** A role: a named set of `resource:action` permissions. */
export interface RoleTable {
  id: string;
  name: string;
  description: Defaulted<string>;
  permissions: Defaulted<string[]>;
  /** Permissions granted only through such roles need a session with a second factor (`otp`). */
  mfa_required: Defaulted<boolean>;
  /** Seeded by the platform (`admin`, `moderator`, `user`): never renamed or deleted. */
  builtin: Defaulted<boolean>;
  created_at: CreatedAt;
  updated_at: CreatedAt;
}

/** Which account holds which role. */
export interface UserRoleTable {
  user_id: string;
  role_id: string;
  created_at: CreatedAt;
}

/** This part's tables (see `IdentityTables`). */
export interface RbacTables {
  gw_role: RoleTable;
  gw_user_role: UserRoleTable;
}
