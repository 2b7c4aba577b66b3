import { recordAudit, auditClient } from '../../audit/index.ts';
import { newId, withTransaction, type Db } from '../../db/index.ts';
import { HttpError } from '../../http/index.ts';
import type { Logger } from '../../observability/index.ts';
import type { AccountMail } from '../accounts/mail.ts';
import { spendUserTokens, switchEmail } from '../accounts/repository.ts';
import type { IdentitySettings } from '../config.ts';
import { identityDb, type IdentityDb } from '../db.ts';
import { IdentityCodes } from '../errors.ts';
import { outboxPublisher, publishSessionsRevoked, type EventPublisher } from '../events.ts';
import type { MfaService } from '../mfa/service.ts';
import { normalizeIdentifier } from '../normalize.ts';
import { revokeSessions } from '../repository.ts';
import type { Client } from '../schemas.ts';
import { silentNotices, type SecurityNotices } from '../security-notices.ts';
import { recoveryLinkTemplate } from '../security-templates.ts';
import type { SessionCache } from '../sessions/session-cache.ts';
import { hashToken, newOpaqueToken } from '../tokens.ts';
import { RecoveryCodes } from './errors.ts';
import {
  userMfaReset,
  userRecoveryCancelled,
  userRecoveryCompleted,
  userRecoveryStarted,
} from './events.ts';
import * as recovery from './repository.ts';

/** What `GET /auth/recovery` tells the signed-in owner. */
export interface RecoveryStatus {
  /** `none`, a mailed link not yet followed (`requested`), or the waiting period (`waiting`). */
  state: 'none' | 'requested' | 'waiting';
  /** When the second factors are removed (waiting only). */
  completesAt: Date | null;
  /** A recovery or an administrator removed the second factors and none was set up since. */
  reenrolmentRequired: boolean;
}

/** The administrator performing a reset (the admin API's actor, signed in). */
export interface ResetActor {
  userId: string;
  ip: string | null;
  requestId: string | null;
}

export interface RecoveryServiceOptions {
  db: Db;
  config: IdentitySettings;
  mail: AccountMail;
  mfa: MfaService;
  logger: Logger;
  /** `PUBLIC_URL`: the cancel link of a recovery is a page there. */
  publicUrl: string;
  notices?: SecurityNotices | null;
  sessions?: SessionCache | null;
  events?: EventPublisher | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Due recoveries completed per transaction of `completeDue`. */
const BATCH = 100;

/**
 * Lost-device recovery. Self-service: `start` (by address or user name, answered before any work
 * that depends on the account) mails a link to a verified address of an account with a second
 * factor; following it (`confirm`) starts the waiting period (`AUTH_MFA_RECOVERY_DELAY`), mailed
 * with a cancel link; `cancelWithToken` / `cancelMine` end it; `completeDue` (a job) removes the
 * second factors once it has passed. An account has at most one open recovery (a partial unique
 * index), so starting twice is one recovery. `adminReset`: an administrator removes a user's
 * second factors at once and ends their sessions. `reportEmailChange`: the old address of an
 * address change says "this was not me".
 */
export class RecoveryService {
  readonly #db: IdentityDb;
  readonly #config: IdentitySettings;
  readonly #mail: AccountMail;
  readonly #mfa: MfaService;
  readonly #log: Logger;
  readonly #publicUrl: string;
  readonly #notices: SecurityNotices;
  readonly #sessions: SessionCache | null;
  readonly #events: EventPublisher;

  constructor(options: RecoveryServiceOptions) {
    this.#db = identityDb(options.db);
    this.#config = options.config;
    this.#mail = options.mail;
    this.#mfa = options.mfa;
    this.#log = options.logger;
    this.#publicUrl = options.publicUrl.replace(/\/+$/, '');
    this.#notices = options.notices ?? silentNotices;
    this.#sessions = options.sessions ?? null;
    this.#events = options.events ?? outboxPublisher;
  }

  /** Waits for the mail work still running (at shutdown, and in tests). */
  drain(): Promise<void> {
    return this.#mail.drain();
  }

  /**
   * Asks for a recovery. Nothing is awaited before the answer: the lookup and the mail run after
   * it (`AccountMail.later`), so a known, an unknown, an unverified account take the same time.
   * Only a live account with a verified address and a second factor gets the link; a requested
   * recovery gets a new link (the earlier one dies); a waiting one is left as it is.
   */
  start(login: string, client: Client): void {
    const normalized = normalizeIdentifier(login);
    if (normalized.length === 0 || normalized.length > 320) return;
    this.#mail.later('recovery link mail', () => this.#start(normalized, client));
  }

  async #start(login: string, client: Client): Promise<void> {
    const found = await recovery.findAccountByLogin(this.#db, login);
    if (!found || !found.verified) return;
    if (!(await this.#mfa.mfaEnabled(found.id))) return;
    await withTransaction(this.#db, async (trx) => {
      const account = await recovery.lockAccountRow(trx, found.id);
      if (!account || !account.verified) return;
      const open = await recovery.lockOpenRecovery(trx, account.id);
      if (open?.state === 'waiting') return;
      const token = newOpaqueToken();
      const ttlS = this.#config.resetTokenTtlS;
      if (open) {
        await recovery.renewConfirmation(trx, open.id, hashToken(token), ttlS);
      } else {
        const id = newId();
        if (
          !(await recovery.insertRequestedRecovery(trx, {
            id,
            userId: account.id,
            confirmTokenHash: hashToken(token),
            ttlS,
          }))
        )
          return;
      }
      await recordAudit(trx, {
        action: 'auth.recovery.request',
        actorId: null,
        subjectType: 'user',
        subjectId: account.id,
        ...auditClient(client),
        data: { renewed: open !== undefined },
      });
      await this.#mail.quietly((mailer) =>
        mailer.send(
          {
            template: recoveryLinkTemplate,
            to: account.email,
            vars: {
              username: account.username,
              token,
              minutes: Math.max(1, Math.round(ttlS / 60)),
            },
            userId: account.id,
            requestId: client.requestId,
          },
          { trx },
        ),
      );
    });
  }

  /**
   * Follows the mailed link: the waiting period starts (`completesAt`), the owner is mailed with
   * a cancel link. An unknown, expired, used or cancelled link is 400 `INVALID_RECOVERY_TOKEN`.
   */
  async confirm(token: string, client: Client): Promise<Date> {
    const cancelToken = newOpaqueToken();
    const confirmed = await withTransaction(this.#db, async (trx, ctx) => {
      const row = await recovery.confirmRecovery(
        trx,
        hashToken(token),
        hashToken(cancelToken),
        this.#config.recovery.delayS,
      );
      if (!row) return undefined;
      await this.#events.publish(trx, userRecoveryStarted, {
        data: { userId: row.user_id, completesAt: row.completes_at.toISOString() },
        subject: { type: 'user', id: row.user_id },
        actorId: null,
        ownerId: row.user_id,
        requestId: client.requestId,
      });
      await recordAudit(trx, {
        action: 'auth.recovery.start',
        actorId: null,
        subjectType: 'user',
        subjectId: row.user_id,
        ...auditClient(client),
        data: { recoveryId: row.id, completesAt: row.completes_at.toISOString() },
      });
      ctx.afterCommit(() =>
        this.#notices.notify(row.user_id, {
          kind: 'recovery-started',
          completesAt: row.completes_at,
          cancelUrl: `${this.#publicUrl}/mfa-recovery/cancel?token=${cancelToken}`,
        }),
      );
      return row;
    });
    if (!confirmed) throw new HttpError(RecoveryCodes.INVALID_RECOVERY_TOKEN);
    return confirmed.completes_at;
  }

  /** Cancels by the mailed cancel link; 400 `INVALID_RECOVERY_TOKEN` when it cancels nothing. */
  async cancelWithToken(token: string, client: Client): Promise<void> {
    const done = await this.#cancel({ cancelTokenHash: hashToken(token) }, 'link', client);
    if (!done) throw new HttpError(RecoveryCodes.INVALID_RECOVERY_TOKEN);
  }

  /** The signed-in owner cancels their open recovery; 404 `RECOVERY_NOT_FOUND` when none. */
  async cancelMine(userId: string, client: Client): Promise<void> {
    const done = await this.#cancel({ userId }, 'signed-in', client);
    if (!done) throw new HttpError(RecoveryCodes.RECOVERY_NOT_FOUND);
  }

  async #cancel(
    by: { cancelTokenHash: string } | { userId: string },
    via: 'link' | 'signed-in',
    client: Client,
  ): Promise<boolean> {
    return withTransaction(this.#db, async (trx, ctx) => {
      const row = await recovery.cancelRecovery(trx, by);
      if (!row) return false;
      await this.#events.publish(trx, userRecoveryCancelled, {
        data: { userId: row.user_id, via },
        subject: { type: 'user', id: row.user_id },
        actorId: via === 'signed-in' ? row.user_id : null,
        ownerId: row.user_id,
        requestId: client.requestId,
      });
      await recordAudit(trx, {
        action: 'auth.recovery.cancel',
        actorId: via === 'signed-in' ? row.user_id : null,
        subjectType: 'user',
        subjectId: row.user_id,
        ...auditClient(client),
        data: { recoveryId: row.id, via },
      });
      ctx.afterCommit(() => this.#notices.notify(row.user_id, { kind: 'recovery-cancelled' }));
      return true;
    });
  }

  /** The signed-in owner's recovery state and whether they must set up a second factor again. */
  async status(userId: string): Promise<RecoveryStatus> {
    const open = await recovery.openRecovery(this.#db, userId);
    let reenrolmentRequired = await recovery.pendingReenrolment(this.#db, userId);
    if (reenrolmentRequired && (await this.#mfa.mfaEnabled(userId))) {
      // A factor was set up since: the flag is spent.
      await recovery.markReenrolled(this.#db, userId);
      reenrolmentRequired = false;
    }
    return {
      state: open ? (open.state === 'waiting' ? 'waiting' : 'requested') : 'none',
      completesAt: open?.state === 'waiting' ? open.completes_at : null,
      reenrolmentRequired,
    };
  }

  /**
   * Completes the recoveries whose waiting period has passed (the job's work): their second
   * factors are removed, the owner is mailed. Returns how many were completed.
   */
  async completeDue(): Promise<number> {
    let total = 0;
    for (;;) {
      const done = await withTransaction(this.#db, async (trx, ctx) => {
        const due = await recovery.lockDueRecoveries(trx, BATCH);
        for (const row of due) {
          await this.#mfa.removeAllFactors(row.user_id, trx);
          await recovery.markCompleted(trx, row.id);
          await this.#events.publish(trx, userRecoveryCompleted, {
            data: { userId: row.user_id },
            subject: { type: 'user', id: row.user_id },
            actorId: null,
            ownerId: row.user_id,
            requestId: null,
          });
          await recordAudit(trx, {
            action: 'auth.recovery.complete',
            actorId: null,
            subjectType: 'user',
            subjectId: row.user_id,
            data: { recoveryId: row.id },
          });
          ctx.afterCommit(() => this.#notices.notify(row.user_id, { kind: 'recovery-completed' }));
        }
        return due.length;
      });
      total += done;
      if (done < BATCH) return total;
    }
  }

  /**
   * An administrator removes a user's second factors (lost device): every session of the user
   * ends, an open self-service recovery is cancelled, the user must set up a factor again and is
   * mailed. Their own: 409 `CANNOT_RESET_OWN_MFA`; unknown: 404 `USER_NOT_FOUND`. The route
   * checks `users:admin` and the administrator's recent authentication.
   */
  async adminReset(actor: ResetActor, userId: string, client: Client): Promise<void> {
    if (!UUID.test(userId)) throw new HttpError(IdentityCodes.USER_NOT_FOUND);
    if (actor.userId === userId) throw new HttpError(RecoveryCodes.CANNOT_RESET_OWN_MFA);
    await withTransaction(this.#db, async (trx, ctx) => {
      const account = await recovery.lockAccountRow(trx, userId);
      if (!account) throw new HttpError(IdentityCodes.USER_NOT_FOUND);
      const hadFactors = await this.#mfa.mfaEnabled(userId, trx);
      await this.#mfa.removeAllFactors(userId, trx);
      const cancelled = await recovery.cancelRecovery(trx, { userId });
      if (cancelled)
        await this.#events.publish(trx, userRecoveryCancelled, {
          data: { userId, via: 'admin-reset' },
          subject: { type: 'user', id: userId },
          actorId: actor.userId,
          ownerId: userId,
          requestId: actor.requestId,
        });
      await recovery.insertAdminReset(trx, newId(), userId);
      const revoked = await revokeSessions(trx, { userId }, 'mfa-reset');
      await publishSessionsRevoked(this.#events, trx, {
        userId,
        sessionIds: revoked,
        reason: 'mfa-reset',
        actorId: actor.userId,
        requestId: actor.requestId,
      });
      await this.#events.publish(trx, userMfaReset, {
        data: { userId, adminId: actor.userId },
        subject: { type: 'user', id: userId },
        actorId: actor.userId,
        ownerId: userId,
        requestId: actor.requestId,
      });
      await recordAudit(trx, {
        action: 'admin.user.mfa-reset',
        actorId: actor.userId,
        subjectType: 'user',
        subjectId: userId,
        ...auditClient(client),
        data: {
          hadFactors,
          sessionsRevoked: revoked.length,
          recoveryCancelled: cancelled !== undefined,
        },
      });
      ctx.afterCommit(() => this.#sessions?.invalidateUser(userId));
      ctx.afterCommit(() => this.#notices.notify(userId, { kind: 'mfa-reset-by-admin' }));
    });
  }

  /**
   * The old address of an address change reports it ("this was not me", the mailed link, single
   * use, 7 days): the account is locked (until a password reset or an administrator unlocks it),
   * every session ends, every mailed token and report link dies, an open recovery is cancelled,
   * and the old address becomes the account's again unless another account has taken it since.
   * The owner then chooses a new password with "forgot password" at that address, which unlocks.
   */
  async reportEmailChange(token: string, client: Client): Promise<{ restored: boolean }> {
    const outcome = await withTransaction(this.#db, async (trx, ctx) => {
      const report = await recovery.consumeEmailChangeReport(trx, hashToken(token));
      if (!report) return undefined;
      const account = await recovery.lockAccountRow(trx, report.user_id);
      if (!account) return undefined;
      const restored =
        account.email !== report.old_email &&
        !(await recovery.emailTakenByOther(trx, report.old_email, account.id));
      if (restored) await switchEmail(trx, account.id, report.old_email);
      await recovery.lockUntilUnlocked(trx, account.id);
      await spendUserTokens(trx, account.id);
      await recovery.spendEmailChangeReports(trx, account.id);
      const cancelled = await recovery.cancelRecovery(trx, { userId: account.id });
      const revoked = await revokeSessions(trx, { userId: account.id }, 'email-change-reported');
      await publishSessionsRevoked(this.#events, trx, {
        userId: account.id,
        sessionIds: revoked,
        reason: 'email-change-reported',
        actorId: null,
        requestId: client.requestId,
      });
      await recordAudit(trx, {
        action: 'user.email.change.report',
        actorId: null,
        subjectType: 'user',
        subjectId: account.id,
        ...auditClient(client),
        data: {
          restored,
          sessionsRevoked: revoked.length,
          recoveryCancelled: cancelled !== undefined,
        },
      });
      ctx.afterCommit(() => this.#sessions?.invalidateUser(account.id));
      return { restored, userId: account.id };
    });
    if (!outcome) throw new HttpError(RecoveryCodes.INVALID_REPORT_TOKEN);
    this.#log.warn(
      { userId: outcome.userId, restored: outcome.restored, requestId: client.requestId },
      'address change reported by the old address: account locked, sessions ended',
    );
    return { restored: outcome.restored };
  }
}
