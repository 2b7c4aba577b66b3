import { auditChanges, auditEventsQuery, recordAudit, auditClient } from '../../audit/index.ts';
import {
  DbCodes,
  isUniqueViolation,
  newId,
  paginate,
  parseListQuery,
  withTransaction,
  type Db,
  type ListSpec,
  type Page,
  type PaginateOptions,
} from '../../db/index.ts';
import { HttpCodes, HttpError } from '../../http/index.ts';
import { IdentityCodes } from '../errors.ts';
import type { SessionCache } from '../sessions/session-cache.ts';
import { normalizeIdentifier } from '../normalize.ts';
import { PlatformPermissions, ROLE_NAME_PATTERN, type AccessControl } from '../rbac/permissions.ts';
import * as rbac from '../rbac/repository.ts';
import { ADMIN_ROLE, refuseLastAdmin } from '../rbac/last-admin.ts';
import * as repo from '../repository.ts';
import { identityDb, type IdentityDb } from '../db.ts';
import {
  outboxPublisher,
  publishRoleChanges,
  publishSessionsRevoked,
  type EventPublisher,
} from '../events.ts';

/** Who performs an admin action: the signed-in account, or null for the operator's CLI. */
export interface Actor {
  userId: string | null;
  amr: readonly string[];
  ip: string | null;
  requestId: string | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ROLE_NAME = new RegExp(ROLE_NAME_PATTERN);

/** `GET /admin/users`: filters and sorts; `role` is applied separately (a join, not a column). */
export const adminUsersSpec: ListSpec = {
  name: 'admin-users',
  filters: {
    email: { column: 'a.email', type: 'string', ops: ['eq', 'contains'] },
    username: { column: 'a.username', type: 'string', ops: ['eq', 'contains'] },
    locked: { column: 'a.locked', type: 'boolean', ops: ['eq'] },
    createdAt: { column: 'a.created_at', type: 'timestamp', ops: ['gte', 'lte'] },
  },
  sorts: { createdAt: 'a.created_at', email: 'a.email', username: 'a.username' },
  defaultSort: '-createdAt',
  idColumn: 'a.id',
};

/** `GET /admin/audit-events`. */
export const auditEventsSpec: ListSpec = {
  name: 'admin-audit-events',
  filters: {
    actorId: { column: 'actor_id', type: 'uuid', ops: ['eq'] },
    subjectType: { column: 'subject_type', type: 'string', ops: ['eq'] },
    subjectId: { column: 'subject_id', type: 'string', ops: ['eq'] },
    action: { column: 'action', type: 'string', ops: ['eq', 'in'] },
    occurredAt: { column: 'occurred_at', type: 'timestamp', ops: ['gte', 'lte'] },
  },
  sorts: { occurredAt: 'occurred_at' },
  defaultSort: '-occurredAt',
};

const unique = (xs: readonly string[]) => [...new Set(xs)].sort();

/** A role as the admin API shows it. */
export interface RoleView {
  id: string;
  name: string;
  description: string;
  permissions: string[];
  mfaRequired: boolean;
  builtin: boolean;
  userCount: number;
  createdAt: Date;
  updatedAt: Date;
}

const roleView = (r: rbac.RoleRow): RoleView => ({
  id: r.id,
  name: r.name,
  description: r.description,
  permissions: r.permissions,
  mfaRequired: r.mfa_required,
  builtin: r.builtin,
  userCount: r.user_count,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

/**
 * The admin API's rules: account roles and locks, role edits, the audit trail. Every change is
 * audited in its own transaction; cached permissions are dropped once it commits.
 */
export class AdminService {
  readonly #db: IdentityDb;
  readonly #access: AccessControl;
  readonly #paging: PaginateOptions;

  readonly #sessions: SessionCache | null;
  readonly #events: EventPublisher;

  constructor(options: {
    db: Db;
    access: AccessControl;
    paging: PaginateOptions;
    /** The session-check cache: a lock must end the sessions on the next request. */
    sessions?: SessionCache | null;
    /** Domain events (`platform.events`); none: written to the outbox without metrics. */
    events?: EventPublisher | null;
  }) {
    this.#events = options.events ?? outboxPublisher;
    this.#db = identityDb(options.db);
    this.#access = options.access;
    this.#paging = options.paging;
    this.#sessions = options.sessions ?? null;
  }

  /** Live accounts, keyset- or offset-paginated, filtered by the list query (and `role`). */
  async listUsers(query: Readonly<Record<string, unknown>>): Promise<Page<rbac.AdminUserRow>> {
    const { role, ...rest } = query;
    if (role !== undefined && (typeof role !== 'string' || !ROLE_NAME.test(role)))
      throw new HttpError(DbCodes.INVALID_LIST_QUERY, {
        detail: 'The list query is not valid for this listing.',
        errors: [{ path: '/query/role', message: 'must be one role name' }],
      });
    // The role is part of the listing's name, so a cursor cannot be replayed with another role.
    const spec =
      role === undefined ? adminUsersSpec : { ...adminUsersSpec, name: `admin-users:${role}` };
    const list = parseListQuery(spec, rest);
    let qb = rbac.adminUsers(this.#db);
    if (role !== undefined) qb = qb.where(rbac.holdingRole(role));
    // Keyset pages as named prepared statements, one per listing shape (platform/db/prepared.ts).
    return paginate(this.#db as never, spec, list, qb, { ...this.#paging, prepared: true });
  }

  /** One live account; 404 for an unknown id (a malformed one included). */
  async user(id: string): Promise<rbac.AdminUserRow> {
    const row = UUID.test(id) ? await rbac.findAdminUser(this.#db, id) : undefined;
    if (!row) throw new HttpError(IdentityCodes.USER_NOT_FOUND);
    return row;
  }

  /**
   * Sets an account's roles (the whole set) and/or locks or unlocks it. Changing roles needs
   * `roles:admin` besides `users:admin` (whoever assigns roles can grant themselves anything).
   * A lock revokes every session at once; an unlock clears the lockout counters.
   */
  async updateUser(
    actor: Actor,
    id: string,
    change: { roles?: string[]; locked?: boolean },
  ): Promise<rbac.AdminUserRow> {
    if (!UUID.test(id)) throw new HttpError(IdentityCodes.USER_NOT_FOUND);
    if (
      change.roles !== undefined &&
      actor.userId !== null &&
      !(await this.#access.hasPermission(actor.userId, PlatformPermissions.ROLES_ADMIN, actor.amr))
    )
      throw new HttpError(HttpCodes.FORBIDDEN, {
        detail: 'Changing roles needs the `roles:admin` permission.',
      });
    if (change.locked === true && actor.userId === id)
      throw new HttpError(IdentityCodes.CANNOT_LOCK_SELF);
    const audit = { actorId: actor.userId, ...auditClient(actor) };
    await withTransaction(this.#db, async (trx, ctx) => {
      if (!(await rbac.lockUser(trx, id))) throw new HttpError(IdentityCodes.USER_NOT_FOUND);
      if (change.roles !== undefined) {
        const wanted = unique(change.roles);
        const current = await rbac.userRoleNames(trx, id);
        const ids = await rbac.roleIdsByName(trx, [...wanted, ...current]);
        const unknown = wanted.filter((n) => !ids.has(n));
        if (unknown.length > 0)
          throw new HttpError(IdentityCodes.UNKNOWN_ROLE, {
            errors: unknown.map((n) => ({
              path: `/body/roles/${change.roles?.indexOf(n) ?? 0}`,
              message: `no role is named "${n}"`,
            })),
          });
        const added = wanted.filter((n) => !current.includes(n));
        const removed = current.filter((n) => !wanted.includes(n));
        if (removed.includes(ADMIN_ROLE)) await refuseLastAdmin(trx, id);
        if (added.length > 0 || removed.length > 0) {
          const idOf = (n: string) => ids.get(n) as string;
          await rbac.removeUserRoles(trx, id, removed.map(idOf));
          await rbac.addUserRoles(trx, id, added.map(idOf));
          await publishRoleChanges(this.#events, trx, {
            userId: id,
            added,
            removed,
            actorId: actor.userId,
            requestId: actor.requestId,
          });
          await recordAudit(trx, {
            ...audit,
            action: 'admin.user.roles',
            subjectType: 'user',
            subjectId: id,
            data: {
              added,
              removed,
              changes: auditChanges({ roles: [...current].sort() }, { roles: [...wanted].sort() }),
            },
          });
          ctx.afterCommit(() => this.#access.invalidateUsers([id]));
        }
      }
      if (change.locked === true) {
        await refuseLastAdmin(trx, id);
        await rbac.lockAccount(trx, id);
        const revoked = await repo.revokeSessions(trx, { userId: id }, 'admin-lock');
        await publishSessionsRevoked(this.#events, trx, {
          userId: id,
          sessionIds: revoked,
          reason: 'admin-lock',
          actorId: actor.userId,
          requestId: actor.requestId,
        });
        ctx.afterCommit(() => this.#sessions?.invalidateUser(id));
        await recordAudit(trx, {
          ...audit,
          action: 'admin.user.lock',
          subjectType: 'user',
          subjectId: id,
          data: { sessionsRevoked: revoked.length },
        });
      } else if (change.locked === false) {
        await rbac.unlockAccount(trx, id);
        await recordAudit(trx, {
          ...audit,
          action: 'admin.user.unlock',
          subjectType: 'user',
          subjectId: id,
        });
      }
    });
    return this.user(id);
  }

  /** Every role, by name, with how many accounts hold it. */
  async roles(): Promise<RoleView[]> {
    return (await rbac.listRoles(this.#db)).map(roleView);
  }

  async #role(id: string): Promise<RoleView> {
    const row = await rbac.findRole(this.#db, id);
    if (!row) throw new HttpError(IdentityCodes.ROLE_NOT_FOUND);
    return roleView(row);
  }

  /** A new (not built-in) role; 409 when the name is taken. */
  async createRole(
    actor: Actor,
    input: { name: string; description?: string; permissions: string[]; mfaRequired?: boolean },
  ): Promise<RoleView> {
    const id = newId();
    const role = {
      id,
      name: input.name,
      description: input.description ?? '',
      permissions: unique(input.permissions),
      mfaRequired: input.mfaRequired ?? false,
    };
    try {
      await withTransaction(this.#db, async (trx) => {
        await rbac.insertRole(trx, role);
        await recordAudit(trx, {
          actorId: actor.userId,
          ...auditClient(actor),
          action: 'admin.role.create',
          subjectType: 'role',
          subjectId: id,
          data: { name: role.name, permissions: role.permissions, mfaRequired: role.mfaRequired },
        });
      });
    } catch (error) {
      if (isUniqueViolation(error, 'gw_role_name_key'))
        throw new HttpError(IdentityCodes.ROLE_NAME_TAKEN, { cause: error });
      throw error;
    }
    return this.#role(id);
  }

  /** Edits a role; built-in roles keep their names. Every cached grant set is dropped after. */
  async updateRole(
    actor: Actor,
    id: string,
    change: { name?: string; description?: string; permissions?: string[]; mfaRequired?: boolean },
  ): Promise<RoleView> {
    if (!UUID.test(id)) throw new HttpError(IdentityCodes.ROLE_NOT_FOUND);
    try {
      await withTransaction(this.#db, async (trx, ctx) => {
        const role = await rbac.lockRole(trx, id);
        if (!role) throw new HttpError(IdentityCodes.ROLE_NOT_FOUND);
        if (change.name !== undefined && change.name !== role.name && role.builtin)
          throw new HttpError(IdentityCodes.ROLE_BUILTIN, {
            detail: `The built-in role "${role.name}" cannot be renamed.`,
          });
        const before: Record<string, unknown> = {};
        const after: Record<string, unknown> = {};
        const set: Parameters<typeof rbac.updateRole>[2] = {};
        if (change.name !== undefined && change.name !== role.name) {
          set.name = change.name;
          before.name = role.name;
          after.name = change.name;
        }
        if (change.description !== undefined && change.description !== role.description) {
          set.description = change.description;
          before.description = role.description;
          after.description = change.description;
        }
        const permissions = change.permissions && unique(change.permissions);
        // The built-in admin keeps every platform permission: editing it must not lock everyone out.
        const platform = Object.values(PlatformPermissions) as string[];
        if (role.builtin && role.name === 'admin' && permissions) {
          const dropped = platform.filter((p) => !permissions.includes(p));
          if (dropped.length > 0)
            throw new HttpError(IdentityCodes.ROLE_BUILTIN, {
              detail: `The built-in role "admin" keeps every platform permission (${dropped.join(', ')}).`,
            });
        }
        if (permissions && permissions.join(' ') !== unique(role.permissions).join(' ')) {
          set.permissions = permissions;
          before.permissions = role.permissions;
          after.permissions = permissions;
        }
        if (change.mfaRequired !== undefined && change.mfaRequired !== role.mfa_required) {
          set.mfa_required = change.mfaRequired;
          before.mfaRequired = role.mfa_required;
          after.mfaRequired = change.mfaRequired;
        }
        if (Object.keys(set).length === 0) return;
        await rbac.updateRole(trx, id, set);
        await recordAudit(trx, {
          actorId: actor.userId,
          ...auditClient(actor),
          action: 'admin.role.update',
          subjectType: 'role',
          subjectId: id,
          data: { changes: auditChanges(before, after) },
        });
        ctx.afterCommit(() => this.#access.invalidateRoles());
      });
    } catch (error) {
      if (isUniqueViolation(error, 'gw_role_name_key'))
        throw new HttpError(IdentityCodes.ROLE_NAME_TAKEN, { cause: error });
      throw error;
    }
    return this.#role(id);
  }

  /** Deletes a role no account holds; built-in roles and roles in use are refused (409). */
  async deleteRole(actor: Actor, id: string): Promise<void> {
    if (!UUID.test(id)) throw new HttpError(IdentityCodes.ROLE_NOT_FOUND);
    await withTransaction(this.#db, async (trx, ctx) => {
      const role = await rbac.lockRole(trx, id);
      if (!role) throw new HttpError(IdentityCodes.ROLE_NOT_FOUND);
      if (role.builtin)
        throw new HttpError(IdentityCodes.ROLE_BUILTIN, {
          detail: `The built-in role "${role.name}" cannot be deleted.`,
        });
      const holders = await rbac.roleHolders(trx, id);
      if (holders > 0)
        throw new HttpError(IdentityCodes.ROLE_IN_USE, {
          detail: `${holders} account(s) hold the role "${role.name}".`,
        });
      await rbac.deleteRole(trx, id);
      await recordAudit(trx, {
        actorId: actor.userId,
        ...auditClient(actor),
        action: 'admin.role.delete',
        subjectType: 'role',
        subjectId: id,
        data: { name: role.name, permissions: role.permissions },
      });
      ctx.afterCommit(() => this.#access.invalidateRoles());
    });
  }

  /** The audit trail, newest first, paginated and filtered by the list query. */
  async auditEvents(query: Readonly<Record<string, unknown>>) {
    const list = parseListQuery(auditEventsSpec, query);
    return paginate(
      this.#db as never,
      auditEventsSpec,
      list,
      auditEventsQuery(this.#db),
      this.#paging,
    );
  }

  /**
   * The operator's bootstrap: gives the account with this address or user name a role, audited
   * as a system action (no actor). Returns false when it already held the role.
   */
  async grantRole(login: string, roleName: string): Promise<{ userId: string; added: boolean }> {
    const normalized = normalizeIdentifier(login);
    const result = await withTransaction(this.#db, async (trx) => {
      const user = await rbac.lockAccountByLogin(trx, normalized);
      if (!user) throw new HttpError(IdentityCodes.USER_NOT_FOUND);
      const ids = await rbac.roleIdsByName(trx, [roleName]);
      const roleId = ids.get(roleName);
      if (!roleId)
        throw new HttpError(IdentityCodes.UNKNOWN_ROLE, {
          detail: `No role is named "${roleName}".`,
        });
      const held = await rbac.userRoleNames(trx, user.id);
      if (held.includes(roleName)) return { userId: user.id, added: false };
      await rbac.addUserRoles(trx, user.id, [roleId]);
      await publishRoleChanges(this.#events, trx, {
        userId: user.id,
        added: [roleName],
        removed: [],
        actorId: null,
      });
      await recordAudit(trx, {
        action: 'admin.user.roles',
        actorId: null,
        subjectType: 'user',
        subjectId: user.id,
        data: {
          added: [roleName],
          removed: [],
          via: 'cli',
          changes: auditChanges({ roles: [...held].sort() }, { roles: [...held, roleName].sort() }),
        },
      });
      return { userId: user.id, added: true };
    });
    if (result.added) await this.#access.invalidateUsers([result.userId]);
    return result;
  }
}
