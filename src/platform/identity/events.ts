import { Type } from 'typebox';
import type { AnyDb } from '../db/index.ts';
import { defineEvent, writeEvent, type EventType, type Events } from '../events/index.ts';
import { PlatformPermissions } from './rbac/permissions.ts';
import { securityEvents } from './recovery/events.ts';
import { factorEvents } from './mfa/events.ts';

/*
 * The identity area's domain events, published in the transaction of the change. Payloads carry
 * ids and non-secret facts only: no address, no password hash, no token.
 */

const uuid = Type.String({ format: 'uuid' });
const EXAMPLE_USER = '0190a5c4-7b7e-7000-8000-000000000001';
const EXAMPLE_SESSION = '0190a5c4-7b7e-7000-8000-0000000000a1';
/** Holders of `users:read` see every identity event; the user it concerns sees their own. */
const visibility = { permission: PlatformPermissions.USERS_READ, ownerVisible: true };

export const userRegistered = defineEvent({
  type: 'user.registered',
  description:
    'An account was created (by sign-up with a password, or at a first provider sign-in).',
  payload: Type.Object(
    {
      userId: uuid,
      username: Type.String(),
      method: Type.Union([Type.Literal('password'), Type.Literal('oidc')]),
      emailVerified: Type.Boolean(),
    },
    { additionalProperties: false },
  ),
  example: { userId: EXAMPLE_USER, username: 'ada', method: 'password', emailVerified: false },
  visibility,
});

export const userEmailVerified = defineEvent({
  type: 'user.email_verified',
  description: "An account's address was verified (its link followed, or a password reset).",
  payload: Type.Object(
    {
      userId: uuid,
      via: Type.Union([Type.Literal('link'), Type.Literal('password-reset')]),
    },
    { additionalProperties: false },
  ),
  example: { userId: EXAMPLE_USER, via: 'link' },
  visibility,
});

export const userDeleted = defineEvent({
  type: 'user.deleted',
  description:
    'An account was deleted by its owner: it is gone from sign-in at once and purged after the retention period.',
  payload: Type.Object({ userId: uuid }, { additionalProperties: false }),
  example: { userId: EXAMPLE_USER },
  visibility,
});

export const sessionRevoked = defineEvent({
  type: 'session.revoked',
  description:
    'A session ended before its expiry: signed out, revoked by its user, ended by a password change or reset, an account lock or deletion, or a reused refresh token.',
  payload: Type.Object(
    { userId: uuid, sessionId: uuid, reason: Type.String({ maxLength: 64 }) },
    { additionalProperties: false },
  ),
  example: { userId: EXAMPLE_USER, sessionId: EXAMPLE_SESSION, reason: 'logout' },
  visibility,
});

export const roleGranted = defineEvent({
  type: 'role.granted',
  description: 'An account was given a role (by an administrator or the operator command).',
  payload: Type.Object({ userId: uuid, role: Type.String() }, { additionalProperties: false }),
  example: { userId: EXAMPLE_USER, role: 'moderator' },
  visibility,
});

export const roleRevoked = defineEvent({
  type: 'role.revoked',
  description: 'A role was taken from an account by an administrator.',
  payload: Type.Object({ userId: uuid, role: Type.String() }, { additionalProperties: false }),
  example: { userId: EXAMPLE_USER, role: 'moderator' },
  visibility,
});

/** The identity module's event types. */
export const identityEvents: readonly EventType[] = [
  userRegistered,
  userEmailVerified,
  userDeleted,
  sessionRevoked,
  roleGranted,
  roleRevoked,
  ...securityEvents,
  ...factorEvents,
];

/** What the identity services publish with. */
export type EventPublisher = Pick<Events, 'publish'>;

/**
 * Writes into the outbox without the platform's metrics: for services built outside a platform
 * (the operator's command, unit tests). The event is published all the same.
 */
export const outboxPublisher: EventPublisher = { publish: writeEvent };

/** One `session.revoked` per session ended, in the caller's transaction. */
export async function publishSessionsRevoked(
  events: EventPublisher,
  trx: AnyDb,
  revoked: {
    userId: string;
    sessionIds: readonly string[];
    reason: string;
    actorId?: string | null;
    requestId?: string | null;
  },
): Promise<void> {
  for (const sessionId of revoked.sessionIds) {
    await events.publish(trx, sessionRevoked, {
      data: { userId: revoked.userId, sessionId, reason: revoked.reason },
      subject: { type: 'session', id: sessionId },
      actorId: revoked.actorId === undefined ? revoked.userId : revoked.actorId,
      ownerId: revoked.userId,
      requestId: revoked.requestId ?? null,
    });
  }
}

/** `role.granted` and `role.revoked` for a change of an account's roles, in the caller's transaction. */
export async function publishRoleChanges(
  events: EventPublisher,
  trx: AnyDb,
  change: {
    userId: string;
    added: readonly string[];
    removed: readonly string[];
    actorId: string | null;
    requestId?: string | null;
  },
): Promise<void> {
  const common = {
    subject: { type: 'user', id: change.userId },
    actorId: change.actorId,
    ownerId: change.userId,
    requestId: change.requestId ?? null,
  };
  for (const role of change.added)
    await events.publish(trx, roleGranted, { ...common, data: { userId: change.userId, role } });
  for (const role of change.removed)
    await events.publish(trx, roleRevoked, { ...common, data: { userId: change.userId, role } });
}
