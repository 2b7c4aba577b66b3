import { newId, withTransaction, type Db } from '../db/index.ts';
import type { Mailer, MailTemplate } from '../mail/index.ts';
import type { AccountMail } from './accounts/mail.ts';
import { maskEmail } from './accounts/profile.ts';
import { identityDb, type IdentityDb } from './db.ts';
import { insertEmailChangeReport } from './recovery/repository.ts';
import { findUserContact } from './repository.ts';
import type { FactorKind, SecurityNotice, SecurityNotices } from './security-notices.ts';
import {
  emailChangedTemplate,
  mfaDisabledTemplate,
  mfaEnabledTemplate,
  mfaResetByAdminTemplate,
  passkeyAddedTemplate,
  passkeyRemovedTemplate,
  passwordChangedTemplate,
  passwordResetTemplate,
  providerLinkedTemplate,
  providerUnlinkedTemplate,
  recoveryCancelledTemplate,
  recoveryCompletedTemplate,
  recoveryStartedTemplate,
} from './security-templates.ts';
import { hashToken, newOpaqueToken } from './tokens.ts';

/** How long the "this was not me" link of an address change works. */
export const EMAIL_CHANGE_REPORT_TTL_S = 7 * 86_400;

const FACTOR_NAMES: Record<FactorKind | 'all', string> = {
  totp: 'authenticator app',
  sms: 'text message (SMS)',
  passkey: 'passkey',
  'backup-codes': 'backup codes',
  all: 'every second factor',
};

/** `2026-12-08 10:00 UTC`: a time for a mail, with its zone. */
export function mailTime(at: Date): string {
  return `${at.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/**
 * `SecurityNotices` by mail: one template per notice kind, to the account's address (for
 * `email-changed`, to the old one, with a single-use link to report the change). Each mail is
 * sent after the current answer (`AccountMail.later`): the change never waits on it, and a send
 * that fails (or is over a template's limit) is logged, never thrown. Mail names what changed,
 * never a secret; an address is shown masked.
 */
export class SecurityMail implements SecurityNotices {
  readonly #db: IdentityDb | null;
  readonly #mail: AccountMail;

  /** Without a database (the OpenAPI script, HTTP-only tests) notices go nowhere. */
  constructor(options: { db: Db | null; mail: AccountMail }) {
    this.#db = options.db ? identityDb(options.db) : null;
    this.#mail = options.mail;
  }

  notify(userId: string, notice: SecurityNotice): void {
    if (!this.#db) return;
    try {
      this.#mail.later(`${notice.kind} notice`, () => this.#send(userId, notice));
    } catch {
      // `later` only schedules; nothing here may fail the change that notifies.
    }
  }

  /** Waits for the notices still being sent (at shutdown, and in tests). */
  drain(): Promise<void> {
    return this.#mail.drain();
  }

  async #send(userId: string, notice: SecurityNotice): Promise<void> {
    if (!this.#db) return;
    await withTransaction(this.#db, async (trx) => {
      const account = await findUserContact(trx, userId);
      if (!account) return;
      const send = (template: MailTemplate, vars: Record<string, unknown>, to = account.email) =>
        this.#mail.quietly((mailer: Mailer) =>
          mailer.send(
            {
              template,
              to,
              vars: { username: account.username, ...vars },
              userId,
              requestId: null,
            },
            { trx },
          ),
        );
      switch (notice.kind) {
        case 'password-changed':
          return send(passwordChangedTemplate, {});
        case 'password-reset':
          return send(passwordResetTemplate, {});
        case 'provider-linked':
          return send(providerLinkedTemplate, { provider: notice.provider });
        case 'provider-unlinked':
          return send(providerUnlinkedTemplate, { provider: notice.provider });
        case 'mfa-enabled':
          return send(mfaEnabledTemplate, { factor: FACTOR_NAMES[notice.factor] });
        case 'mfa-disabled':
          return send(mfaDisabledTemplate, { factor: FACTOR_NAMES[notice.factor] });
        case 'passkey-added':
          return send(passkeyAddedTemplate, { name: notice.name });
        case 'passkey-removed':
          return send(passkeyRemovedTemplate, { name: notice.name });
        case 'email-changed': {
          const token = newOpaqueToken();
          await insertEmailChangeReport(trx, {
            id: newId(),
            userId,
            tokenHash: hashToken(token),
            oldEmail: notice.oldEmail,
            ttlS: EMAIL_CHANGE_REPORT_TTL_S,
          });
          return send(
            emailChangedTemplate,
            {
              newEmail: maskEmail(notice.newEmail),
              token,
              days: Math.round(EMAIL_CHANGE_REPORT_TTL_S / 86_400),
            },
            notice.oldEmail,
          );
        }
        case 'recovery-started':
          return send(recoveryStartedTemplate, {
            completesAt: mailTime(notice.completesAt),
            cancelUrl: notice.cancelUrl,
          });
        case 'recovery-cancelled':
          return send(recoveryCancelledTemplate, {});
        case 'recovery-completed':
          return send(recoveryCompletedTemplate, {});
        case 'mfa-reset-by-admin':
          return send(mfaResetByAdminTemplate, {});
      }
    });
  }
}
