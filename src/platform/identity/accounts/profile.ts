import { auditChanges, recordAudit, auditClient } from '../../audit/index.ts';
import { isUniqueViolation, newId, withTransaction, type Db } from '../../db/index.ts';
import { HttpError } from '../../http/index.ts';
import type { SessionCache } from '../sessions/session-cache.ts';
import type { AccountMail } from './mail.ts';
import * as accounts from './repository.ts';
import { confirmEmailChangeTemplate, emailChangeAttemptTemplate } from './templates.ts';
import type { SignedIn } from './service.ts';
import { IdentityCodes } from '../errors.ts';
import { normalizeEmail, normalizeUsername } from '../normalize.ts';
import * as repo from '../repository.ts';
import type { Client } from '../schemas.ts';
import { hashToken, newOpaqueToken } from '../tokens.ts';
import {
  outboxPublisher,
  publishSessionsRevoked,
  userDeleted,
  type EventPublisher,
} from '../events.ts';
import { identityDb, type IdentityDb } from '../db.ts';
import type { IdentitySettings } from '../config.ts';
import { userEmailChanged } from '../recovery/events.ts';
import { refuseLastAdmin } from '../rbac/last-admin.ts';
import { silentNotices, type SecurityNotices } from '../security-notices.ts';

export interface ProfileServiceOptions {
  db: Db;
  config: IdentitySettings;
  mail: AccountMail;
  /** The session-check cache, invalidated when the account's sessions end. */
  sessions?: SessionCache | null;
  /** Domain events (`platform.events`); none: written to the outbox without metrics. */
  events?: EventPublisher | null;
  /** Mail to the owner about security changes (`SecurityMail`); none: silent. */
  notices?: SecurityNotices | null;
}

/** `a***@example.com`: enough for the owner to recognise an address, not to learn it. */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf('@');
  return `${email.slice(0, Math.min(1, at))}***${email.slice(at)}`;
}

/** The signed-in user's account: profile, user name, confirmed email change, deletion. */
export class ProfileService {
  readonly #db: IdentityDb;
  readonly #config: IdentitySettings;
  readonly #mail: AccountMail;
  readonly #sessions: SessionCache | null;
  readonly #events: EventPublisher;
  readonly #notices: SecurityNotices;

  constructor(options: ProfileServiceOptions) {
    this.#events = options.events ?? outboxPublisher;
    this.#notices = options.notices ?? silentNotices;
    this.#db = identityDb(options.db);
    this.#config = options.config;
    this.#mail = options.mail;
    this.#sessions = options.sessions ?? null;
  }

  /** Waits for the mail work still running (at shutdown, and in tests). */
  drain(): Promise<void> {
    return this.#mail.drain();
  }

  /** The signed-in user's account. */
  async profile(userId: string): Promise<accounts.ProfileRow> {
    const row = await accounts.findProfile(this.#db, userId);
    if (!row) throw new HttpError(IdentityCodes.INVALID_ACCESS_TOKEN);
    return row;
  }

  /**
   * Changes the user name (validated like registration, 409 when taken) and/or asks for an email
   * change (step-up checked by the route): the new address gets a confirmation link, or, when it
   * already has an account, a notice instead, and the caller cannot tell which. `emailChange` is
   * true when a change was asked for (the address switches only when the link is followed).
   */
  async updateProfile(
    who: SignedIn,
    input: { username?: string; email?: string },
    client: Client,
  ): Promise<{ profile: accounts.ProfileRow; emailChange: boolean }> {
    const current = await this.profile(who.userId);
    let username: string | null = null;
    if (input.username !== undefined) {
      username = normalizeUsername(input.username);
      if (username === null)
        throw new HttpError(IdentityCodes.INVALID_USERNAME, {
          errors: [
            {
              path: '/body/username',
              message: 'must be 3 to 32 of a-z 0-9 _ . - and not reserved',
            },
          ],
        });
    }
    let email: string | null = null;
    if (input.email !== undefined) {
      email = normalizeEmail(input.email);
      if (email === null)
        throw new HttpError(IdentityCodes.INVALID_EMAIL, {
          errors: [{ path: '/body/email', message: 'must be one plain ASCII email address' }],
        });
    }
    if (username !== null && username !== current.username) {
      const name = username;
      try {
        await withTransaction(this.#db, async (trx) => {
          await accounts.updateUsername(trx, who.userId, name);
          await recordAudit(trx, {
            action: 'user.username.change',
            actorId: who.userId,
            subjectType: 'user',
            subjectId: who.userId,
            ...auditClient(client),
            // Which field changed, not its values: the trail outlives the account (no personal data).
            data: {
              changes: auditChanges(
                { username: current.username },
                { username: name },
                { redact: ['username'] },
              ),
            },
          });
        });
      } catch (error) {
        if (isUniqueViolation(error, 'gw_user_username_uq'))
          throw new HttpError(IdentityCodes.USERNAME_TAKEN, { cause: error });
        throw error;
      }
    }
    const emailChange = email !== null && email !== current.email;
    const profile = username === null ? current : await this.profile(who.userId);
    // Scheduled last, once nothing is left to await: the mail work (which differs for a taken
    // and a free address) starts only after the answer is on its way, never during it.
    if (emailChange) {
      const to = email as string;
      this.#mail.later('email change mail', () => this.#requestEmailChange(who.userId, to, client));
    }
    return { profile, emailChange };
  }

  async #requestEmailChange(userId: string, email: string, client: Client): Promise<void> {
    await withTransaction(this.#db, async (trx) => {
      const user = await accounts.findProfile(trx, userId);
      if (!user) return;
      const taken = await repo.findUserByEmail(trx, email);
      if (taken) {
        await this.#mail.quietly((mailer) =>
          mailer.send(
            {
              template: emailChangeAttemptTemplate,
              to: email,
              vars: {},
              requestId: client.requestId,
            },
            { trx },
          ),
        );
        return;
      }
      // Only the newest link works: an earlier request (perhaps a typo) is void.
      await accounts.spendUserTokens(trx, userId, ['change-email']);
      const token = newOpaqueToken();
      await repo.insertUserToken(trx, {
        id: newId(),
        userId,
        purpose: 'change-email',
        tokenHash: hashToken(token),
        email,
        ttlS: this.#config.emailTokenTtlS,
      });
      await this.#mail.quietly((mailer) =>
        mailer.send(
          {
            template: confirmEmailChangeTemplate,
            to: email,
            vars: {
              username: user.username,
              token,
              hours: Math.max(1, Math.round(this.#config.emailTokenTtlS / 3_600)),
            },
            userId,
            requestId: client.requestId,
          },
          { trx },
        ),
      );
    });
  }

  /**
   * Follows an email change link: the account switches to the address the link was sent to
   * (verified), every other mailed token of the account dies, and the old address is told.
   */
  async confirmEmailChange(token: string, client: Client): Promise<void> {
    try {
      await withTransaction(this.#db, async (trx, ctx) => {
        const used = await repo.consumeUserToken(trx, 'change-email', hashToken(token));
        if (!used) throw new HttpError(IdentityCodes.INVALID_EMAIL_TOKEN);
        const before = await accounts.findProfile(trx, used.user_id);
        if (!before) throw new HttpError(IdentityCodes.INVALID_EMAIL_TOKEN);
        await accounts.switchEmail(trx, before.id, used.email);
        await accounts.spendUserTokens(trx, before.id);
        await recordAudit(trx, {
          action: 'user.email.change',
          actorId: before.id,
          subjectType: 'user',
          subjectId: before.id,
          ...auditClient(client),
          data: {
            changes: auditChanges(
              { email: before.email },
              { email: used.email },
              { redact: ['email'] },
            ),
          },
        });
        await this.#events.publish(trx, userEmailChanged, {
          data: { userId: before.id },
          subject: { type: 'user', id: before.id },
          actorId: before.id,
          ownerId: before.id,
          requestId: client.requestId,
        });
        // To the old address, with the single-use link that reports the change (SecurityMail).
        ctx.afterCommit(() =>
          this.#notices.notify(before.id, {
            kind: 'email-changed',
            oldEmail: before.email,
            newEmail: used.email,
          }),
        );
      });
    } catch (error) {
      // The address got an account after the link was sent; only the link's holder learns it.
      if (isUniqueViolation(error, 'gw_user_email_uq'))
        throw new HttpError(IdentityCodes.EMAIL_TAKEN, { cause: error });
      throw error;
    }
  }

  // Deletion ------------------------------------------------------------------------------------

  /**
   * Soft-deletes the account (step-up checked by the route): every session and mailed token
   * dies now, the address is free at once, the rest goes with the purge after the retention.
   */
  async deleteAccount(who: SignedIn, client: Client): Promise<void> {
    await withTransaction(this.#db, async (trx, ctx) => {
      // The last active administrator cannot leave: nobody could administer the rest.
      await refuseLastAdmin(trx, who.userId);
      if (!(await accounts.softDeleteUser(trx, who.userId))) return;
      const revoked = await repo.revokeSessions(trx, { userId: who.userId }, 'account-deleted');
      await publishSessionsRevoked(this.#events, trx, {
        userId: who.userId,
        sessionIds: revoked,
        reason: 'account-deleted',
        requestId: client.requestId,
      });
      await this.#events.publish(trx, userDeleted, {
        data: { userId: who.userId },
        subject: { type: 'user', id: who.userId },
        actorId: who.userId,
        ownerId: who.userId,
        requestId: client.requestId,
      });
      ctx.afterCommit(() => this.#sessions?.invalidateUser(who.userId));
      await accounts.spendUserTokens(trx, who.userId);
      await recordAudit(trx, {
        action: 'user.delete',
        actorId: who.userId,
        subjectType: 'user',
        subjectId: who.userId,
        ...auditClient(client),
        data: { sessionsRevoked: revoked.length, retentionSeconds: this.#config.accountRetentionS },
      });
    });
  }
}
