import type { Cache } from '../../cache/index.ts';
import type { Db } from '../../db/index.ts';
import * as rbac from './repository.ts';
import { identityDb, type IdentityDb } from '../db.ts';

/** `resource:action`, lowercase; `resource:*` grants every action of the resource. */
export const PERMISSION_PATTERN = '^[a-z][a-z0-9-]{0,47}:([a-z][a-z0-9-]{0,47}|\\*)$';
const PERMISSION = new RegExp(PERMISSION_PATTERN);
/** Role names: lowercase, 2 to 32 of `a-z 0-9 _ -`, starting with a letter. */
export const ROLE_NAME_PATTERN = '^[a-z][a-z0-9_-]{1,31}$';

/** The permissions of the platform's own routes (the seeded `admin` role holds them all). */
export const PlatformPermissions = {
  USERS_READ: 'users:read',
  USERS_ADMIN: 'users:admin',
  ROLES_READ: 'roles:read',
  ROLES_ADMIN: 'roles:admin',
  AUDIT_READ: 'audit:read',
  JOBS_ADMIN: 'jobs:admin',
} as const;

/** Whether a string is a well-formed permission (`resource:action` or `resource:*`). */
export function isPermission(value: string): boolean {
  return PERMISSION.test(value);
}

/**
 * What a user's roles grant, as cached: permission → true when every role granting it requires
 * MFA (so a session without a second factor does not get it), false when some role grants it
 * without. Plain JSON, so it goes through the cache unchanged.
 */
export interface Grants {
  roles: string[];
  permissions: Record<string, boolean>;
}

/** The outcome of a permission check. */
export type Verdict = 'granted' | 'forbidden' | 'mfa-required';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Tag of every cached grant set: any role edit drops them all (roles change rarely). */
const ROLES_TAG = 'rbac:roles';
const userGrantsTag = (userId: string) => `rbac:user:${userId}`;

/** Folds role rows into grants: a permission needs MFA only if every role granting it does. */
export function foldGrants(roles: readonly rbac.GrantRow[]): Grants {
  const permissions: Record<string, boolean> = {};
  for (const role of roles) {
    for (const p of role.permissions)
      permissions[p] = (permissions[p] ?? true) && role.mfa_required;
  }
  return { roles: roles.map((r) => r.name).sort(), permissions };
}

/** Decides one permission against grants and the session's authentication methods. */
export function decide(grants: Grants, permission: string, amr: readonly string[]): Verdict {
  const resource = permission.slice(0, permission.indexOf(':'));
  let needsMfa: boolean | undefined;
  for (const candidate of [permission, `${resource}:*`]) {
    const g = Object.hasOwn(grants.permissions, candidate)
      ? grants.permissions[candidate]
      : undefined;
    if (g === false) return 'granted';
    if (g === true) needsMfa = true;
  }
  if (needsMfa === undefined) return 'forbidden';
  return amr.includes('otp') ? 'granted' : 'mfa-required';
}

export interface AccessControlOptions {
  db: Db;
  cache: Cache;
  /** How long a user's grants are cached (`AUTH_PERMISSION_CACHE_TTL`). */
  ttlSeconds: number;
}

/**
 * Roles and permissions of accounts, cached per user (tagged with the user and with every role
 * edit) in the platform cache. Routes declare `config.permission`; services call the methods.
 */
export class AccessControl {
  readonly #db: IdentityDb;
  readonly #cache: Cache;
  readonly #ttl: number;

  constructor(options: AccessControlOptions) {
    this.#db = identityDb(options.db);
    this.#cache = options.cache;
    this.#ttl = options.ttlSeconds;
  }

  /** The user's roles and what they grant (cached); none for an unknown or deleted account. */
  grants(userId: string): Promise<Grants> {
    if (!UUID.test(userId)) return Promise.resolve({ roles: [], permissions: {} });
    return this.#cache.getOrSet(
      this.#cache.userKey(userId, 'rbac'),
      async () => foldGrants(await rbac.grantRows(this.#db, userId)),
      { ttlSeconds: this.#ttl, tags: [userGrantsTag(userId), ROLES_TAG] },
    );
  }

  /** Checks one permission for a user whose session authenticated with `amr`. */
  async check(userId: string, permission: string, amr: readonly string[]): Promise<Verdict> {
    return decide(await this.grants(userId), permission, amr);
  }

  /**
   * When the account was created (null for an unknown or deleted one), for trust rules that apps
   * apply to new accounts (the spots app holds a young account's spots for review). Read from the
   * database on each call: meant for writes, not for every request.
   */
  async accountCreatedAt(userId: string): Promise<Date | null> {
    if (!UUID.test(userId)) return null;
    return (await rbac.accountCreatedAt(this.#db, userId)) ?? null;
  }

  /**
   * Whether the user holds `permission`. Pass the session's `amr` (`request.amr`): without it a
   * permission that only MFA-required roles grant counts as not held.
   */
  async hasPermission(
    userId: string,
    permission: string,
    amr: readonly string[] = [],
  ): Promise<boolean> {
    return (await this.check(userId, permission, amr)) === 'granted';
  }

  /**
   * The owner ids (of a list of resources) the user may act on: their own, or all of them when
   * the user holds `anyOwner` (e.g. `posts:moderate`). One cached lookup for the whole list, so
   * a page of 100 items costs what one does. Keeps the order; filter the items by the result.
   */
  async actableOwners(
    userId: string,
    ownerIds: readonly string[],
    anyOwner: string,
    amr: readonly string[] = [],
  ): Promise<string[]> {
    if (ownerIds.every((id) => id === userId)) return [...ownerIds];
    if (await this.hasPermission(userId, anyOwner, amr)) return [...ownerIds];
    return ownerIds.filter((id) => id === userId);
  }

  /** Drops the cached grants of users whose roles changed (after the change committed). */
  async invalidateUsers(userIds: readonly string[]): Promise<void> {
    if (userIds.length > 0) await this.#cache.invalidateTags(userIds.map(userGrantsTag));
  }

  /** Drops every cached grant set (after a role was edited or deleted, once committed). */
  async invalidateRoles(): Promise<void> {
    await this.#cache.invalidateTag(ROLES_TAG);
  }
}
