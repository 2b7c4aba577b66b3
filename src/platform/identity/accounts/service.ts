import { recordAudit, auditClient } from '../../audit/index.ts';
import { newId, withTransaction, type Db } from '../../db/index.ts';
import type { Transaction } from 'kysely';
import { HttpError } from '../../http/index.ts';
import type { Logger } from '../../observability/index.ts';
import type { AccountMail } from './mail.ts';
import * as accounts from './repository.ts';
import { resetPasswordTemplate } from './templates.ts';
import { IdentityCodes } from '../errors.ts';
import { normalizeEmail, normalizePassword } from '../normalize.ts';
import { passwordProblems, type PasswordHasher } from '../passwords.ts';
import * as repo from '../repository.ts';
import type { MfaService } from '../mfa/service.ts';
import type { SessionCache } from '../sessions/session-cache.ts';
import type { Client, SecondFactor } from '../schemas.ts';
import type { AuthMethod } from '../tables.ts';
import { hashToken, newOpaqueToken } from '../tokens.ts';
import {
  outboxPublisher,
  publishSessionsRevoked,
  userEmailVerified,
  type EventPublisher,
} from '../events.ts';
import { identityDb, type IdentityDb, type IdentityTables } from '../db.ts';
import type { IdentitySettings } from '../config.ts';
import { userPasswordChanged } from '../recovery/events.ts';
import { silentNotices, type SecurityNotices } from '../security-notices.ts';

/** A new password may not be the current one or any of the ones before it, this many in all. */
export const PASSWORD_HISTORY = 5;

/** The signed-in caller of an account route. */
export interface SignedIn {
  userId: string;
  sessionId: string;
}

/** What `POST /auth/reauthenticate` proves. The MFA branch adds `code` / `backupCode` here. */
export interface ReauthenticateInput {
  password: string;
  /** The second factor, required when the account has MFA (exactly one). */
  factor?: SecondFactor;
}

export interface AccountServiceOptions {
  db: Db;
  config: IdentitySettings;
  hasher: PasswordHasher;
  mail: AccountMail;
  logger: Logger;
  /** Second factors: step-up needs one when the account has MFA. */
  mfa?: MfaService | null;
  /** The session-check cache, invalidated after every change of a user's sessions. */
  sessions?: SessionCache | null;
  /** Domain events (`platform.events`); none: written to the outbox without metrics. */
  events?: EventPublisher | null;
  /** Mail to the owner about security changes (`SecurityMail`); none: silent. */
  notices?: SecurityNotices | null;
}

/**
 * Password flows: forgotten (mailed reset link) and changed passwords with their history, and
 * step-up re-authentication. The profile, email change and deletion are `ProfileService`.
 */
export class AccountService {
  readonly #db: IdentityDb;
  readonly #config: IdentitySettings;
  readonly #hasher: PasswordHasher;
  readonly #mail: AccountMail;
  readonly #log: Logger;
  readonly #mfa: MfaService | null;
  readonly #sessions: SessionCache | null;
  readonly #events: EventPublisher;
  readonly #notices: SecurityNotices;

  constructor(options: AccountServiceOptions) {
    this.#notices = options.notices ?? silentNotices;
    this.#db = identityDb(options.db);
    this.#config = options.config;
    this.#hasher = options.hasher;
    this.#mail = options.mail;
    this.#log = options.logger;
    this.#mfa = options.mfa ?? null;
    this.#sessions = options.sessions ?? null;
    this.#events = options.events ?? outboxPublisher;
  }

  /** Waits for the mail work still running (at shutdown, and in tests). */
  drain(): Promise<void> {
    return this.#mail.drain();
  }

  /** A failed proof (password, expired or used reset token) counts towards the lockout. */
  async #countFailure(
    userId: string,
    sessionId: string | null,
    client: Client,
    reason: string,
  ): Promise<void> {
    const locked = await withTransaction(this.#db, (trx) =>
      this.#recordFailure(trx, userId, sessionId, client, reason),
    );
    if (locked) this.#logLockout(userId, client, reason);
  }

  /** Counts a failed proof in `trx`: true when it locked the account. */
  async #recordFailure(
    trx: Transaction<IdentityTables>,
    userId: string,
    sessionId: string | null,
    client: Client,
    reason: string,
  ): Promise<boolean> {
    const nowLocked = await repo.recordFailedLogin(trx, userId, this.#config.lockout);
    await repo.insertLoginEvent(trx, {
      id: newId(),
      userId,
      outcome: 'failure',
      ip: client.ip,
      userAgent: client.userAgent,
      sessionId,
    });
    if (nowLocked)
      await recordAudit(trx, {
        action: 'auth.lockout',
        subjectType: 'user',
        subjectId: userId,
        ...auditClient(client),
        data: { reason },
      });
    return nowLocked;
  }

  #logLockout(userId: string, client: Client, reason: string): void {
    this.#log.warn({ userId, ip: client.ip, reason }, 'account locked after failures');
  }

  /**
   * The password of a signed-in user, checked like a sign-in: a wrong one counts towards the
   * lockout, and a locked account is refused whatever the password; both are 401
   * `INVALID_CREDENTIALS`. As at sign-in, the account row is locked from the look-up to the
   * commit (argon2 included), so concurrent guesses are decided in turn: at most the lockout
   * threshold is ever evaluated, and a right password is refused once the account is locked.
   */
  async #provePassword(
    who: SignedIn,
    raw: string,
    client: Client,
    reason: string,
  ): Promise<accounts.PasswordRow> {
    const password = normalizePassword(raw);
    const outcome = await withTransaction(this.#db, async (trx) => {
      const user = await accounts.findPasswordRow(trx, who.userId, { forUpdate: true });
      const { ok } = await this.#hasher.verify(user?.password_hash ?? null, password);
      if (!user) return { user: undefined, lockedNow: false };
      if (user.locked) {
        await repo.insertLoginEvent(trx, {
          id: newId(),
          userId: user.id,
          outcome: 'locked',
          ip: client.ip,
          userAgent: client.userAgent,
          sessionId: who.sessionId,
        });
        return { user: undefined, lockedNow: false };
      }
      if (!ok) {
        const lockedNow = await this.#recordFailure(trx, user.id, who.sessionId, client, reason);
        return { user: undefined, lockedNow };
      }
      return { user, lockedNow: false };
    });
    if (outcome.lockedNow) this.#logLockout(who.userId, client, reason);
    if (!outcome.user) throw new HttpError(IdentityCodes.INVALID_CREDENTIALS);
    return outcome.user;
  }

  /** 422 unless the new (normalised) password meets the policy and was not used recently. */
  async #checkNewPassword(
    user: { id: string; username: string; email: string; password_hash: string | null },
    password: string,
    path: string,
  ): Promise<void> {
    const problems = await passwordProblems(
      password,
      this.#config.password,
      [user.username, user.email],
      path,
    );
    if (problems.length > 0) throw new HttpError(IdentityCodes.WEAK_PASSWORD, { errors: problems });
    const earlier = await accounts.passwordHistory(this.#db, user.id, PASSWORD_HISTORY - 1);
    for (const stored of [user.password_hash, ...earlier]) {
      if (stored === null) continue;
      if ((await this.#hasher.verify(stored, password)).ok)
        throw new HttpError(IdentityCodes.PASSWORD_REUSED, {
          errors: [{ path, message: `must differ from your last ${PASSWORD_HISTORY} passwords` }],
        });
    }
  }

  // Forgotten password --------------------------------------------------------------------------

  /** Mails a reset link when the address has an account; the caller learns nothing either way. */
  forgotPassword(rawEmail: string, client: Client): void {
    const email = normalizeEmail(rawEmail);
    if (email === null) return;
    this.#mail.later('password reset mail', () =>
      withTransaction(this.#db, async (trx) => {
        const user = await repo.findUserByEmail(trx, email);
        if (!user) return;
        const token = newOpaqueToken();
        await repo.insertUserToken(trx, {
          id: newId(),
          userId: user.id,
          purpose: 'reset-password',
          tokenHash: hashToken(token),
          email: user.email,
          ttlS: this.#config.resetTokenTtlS,
        });
        await this.#mail.quietly((mailer) =>
          mailer.send(
            {
              template: resetPasswordTemplate,
              to: user.email,
              vars: {
                username: user.username,
                token,
                minutes: Math.max(1, Math.round(this.#config.resetTokenTtlS / 60)),
              },
              userId: user.id,
              requestId: client.requestId,
            },
            { trx },
          ),
        );
      }),
    );
  }

  /**
   * Sets a new password with a mailed reset token: every session ends, the lockout is cleared,
   * the address counts as verified (the mail reached it). An unknown, expired or used token is 400
   * `INVALID_RESET_TOKEN`; expired and used ones of a known account count towards its lockout.
   */
  async resetPassword(input: { token: string; password: string }, client: Client): Promise<void> {
    const tokenHash = hashToken(input.token);
    const invalid = () => new HttpError(IdentityCodes.INVALID_RESET_TOKEN);
    const found = await accounts.findUserToken(this.#db, 'reset-password', tokenHash);
    if (!found || !found.to_current_address) throw invalid();
    if (!found.usable) {
      await this.#countFailure(found.user_id, null, client, 'reset-token');
      throw invalid();
    }
    const user = await accounts.findPasswordRow(this.#db, found.user_id);
    if (!user) throw invalid();
    const password = normalizePassword(input.password);
    await this.#checkNewPassword(user, password, '/body/password');
    const newHash = await this.#hasher.hash(password);
    const spent = await withTransaction(this.#db, async (trx, ctx) => {
      const used = await repo.consumeUserToken(trx, 'reset-password', tokenHash);
      if (!used) return false;
      await accounts.replacePassword(trx, user.id, newHash, { keep: PASSWORD_HISTORY - 1 });
      await accounts.spendUserTokens(trx, user.id, ['reset-password']);
      if (await repo.markEmailVerified(trx, user.id, used.email))
        await this.#events.publish(trx, userEmailVerified, {
          data: { userId: user.id, via: 'password-reset' },
          subject: { type: 'user', id: user.id },
          actorId: user.id,
          ownerId: user.id,
          requestId: client.requestId,
        });
      const revoked = await repo.revokeSessions(trx, { userId: user.id }, 'password-reset');
      await publishSessionsRevoked(this.#events, trx, {
        userId: user.id,
        sessionIds: revoked,
        reason: 'password-reset',
        requestId: client.requestId,
      });
      ctx.afterCommit(() => this.#sessions?.invalidateUser(user.id));
      await recordAudit(trx, {
        action: 'auth.password.reset',
        actorId: user.id,
        subjectType: 'user',
        subjectId: user.id,
        ...auditClient(client),
        data: { sessionsRevoked: revoked.length },
      });
      await this.#events.publish(trx, userPasswordChanged, {
        data: { userId: user.id, via: 'reset' },
        subject: { type: 'user', id: user.id },
        actorId: user.id,
        ownerId: user.id,
        requestId: client.requestId,
      });
      ctx.afterCommit(() => this.#notices.notify(user.id, { kind: 'password-reset' }));
      return true;
    });
    if (!spent) {
      // Spent by a concurrent reset between the check and now: a used token like any other.
      await this.#countFailure(user.id, null, client, 'reset-token');
      throw invalid();
    }
  }

  // Signed-in password flows --------------------------------------------------------------------

  /** Changes the password with the current one; the other sessions end, this one stays. */
  async changePassword(
    who: SignedIn,
    input: { currentPassword: string; newPassword: string },
    client: Client,
  ): Promise<void> {
    const user = await this.#provePassword(who, input.currentPassword, client, 'password-change');
    const password = normalizePassword(input.newPassword);
    await this.#checkNewPassword(user, password, '/body/newPassword');
    const newHash = await this.#hasher.hash(password);
    const changed = await withTransaction(this.#db, async (trx, ctx) => {
      const replaced = await accounts.replacePassword(trx, user.id, newHash, {
        keep: PASSWORD_HISTORY - 1,
        expected: user.password_hash,
      });
      if (!replaced) return false;
      await accounts.spendUserTokens(trx, user.id, ['reset-password']);
      const revoked = await repo.revokeSessions(
        trx,
        { userId: user.id, exceptSessionId: who.sessionId },
        'password-change',
      );
      await publishSessionsRevoked(this.#events, trx, {
        userId: user.id,
        sessionIds: revoked,
        reason: 'password-change',
        requestId: client.requestId,
      });
      ctx.afterCommit(() => this.#sessions?.invalidateUser(user.id));
      await recordAudit(trx, {
        action: 'auth.password.change',
        actorId: user.id,
        subjectType: 'user',
        subjectId: user.id,
        ...auditClient(client),
        data: { sessionsRevoked: revoked.length },
      });
      await this.#events.publish(trx, userPasswordChanged, {
        data: { userId: user.id, via: 'change' },
        subject: { type: 'user', id: user.id },
        actorId: user.id,
        ownerId: user.id,
        requestId: client.requestId,
      });
      ctx.afterCommit(() => this.#notices.notify(user.id, { kind: 'password-changed' }));
      return true;
    });
    // Another change won the race: the current password given is no longer the current one.
    if (!changed) throw new HttpError(IdentityCodes.INVALID_CREDENTIALS);
  }

  /**
   * Step-up: proves the password again (failures count towards the lockout) and marks this
   * session as authenticated now. Returns that time.
   */
  async reauthenticate(who: SignedIn, input: ReauthenticateInput, client: Client): Promise<Date> {
    const user = await this.#provePassword(who, input.password, client, 'reauthenticate');
    const withOtp = await this.#requireSecondFactorForStepUp(user, input, client);
    const methods: AuthMethod[] = withOtp ? ['pwd', 'otp'] : ['pwd'];
    const at = await withTransaction(this.#db, async (trx, ctx) => {
      const marked = await accounts.markReauthenticated(trx, who.sessionId, user.id, methods);
      if (marked === undefined) return undefined;
      // The cached check holds authenticated_at and amr: the next request must see the new ones.
      ctx.afterCommit(() => this.#sessions?.invalidateSession(user.id, who.sessionId));
      await accounts.clearLockout(trx, user.id);
      await recordAudit(trx, {
        action: 'auth.reauthenticate',
        actorId: user.id,
        subjectType: 'session',
        subjectId: who.sessionId,
        ...auditClient(client),
        data: { methods },
      });
      return marked;
    });
    if (at === undefined) throw new HttpError(IdentityCodes.INVALID_ACCESS_TOKEN);
    return at;
  }

  /**
   * SECOND FACTOR FOR STEP-UP (to be filled in by the MFA work): a user with MFA enabled must
   * also present a valid TOTP or backup code here (added to `ReauthenticateInput`), a failure
   * counting towards the lockout like a wrong password, and `markReauthenticated` then records
   * `otp` in the session's `amr`. Without MFA there is nothing more to prove.
   */
  async #requireSecondFactorForStepUp(
    user: accounts.PasswordRow,
    input: ReauthenticateInput,
    client: Client,
  ): Promise<boolean> {
    if (!this.#mfa || !(await this.#mfa.mfaEnabled(user.id))) return false;
    // A missing factor is refused like a wrong one: the answer does not say the account has MFA.
    const ok =
      input.factor !== undefined &&
      (await this.#mfa.verifySecondFactor(user.id, input.factor, client));
    if (!ok) throw new HttpError(IdentityCodes.INVALID_CREDENTIALS);
    return true;
  }
}
