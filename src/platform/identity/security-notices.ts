/*
 * The contract between the parts of identity that change an account's security (second factors,
 * passkeys, recovery, passwords, providers, the address) and the mail that tells its owner. The
 * implementation (`SecurityMail`) sends one mail per notice to the account's address (for
 * `email-changed`, to the old address too, with a way to report it); the caller never waits on
 * delivery and a failed send never fails the change.
 */

/** A second factor's kind, as the user sees it. */
export type FactorKind = 'totp' | 'sms' | 'passkey' | 'backup-codes';

export type SecurityNotice =
  | { kind: 'password-changed' }
  | { kind: 'password-reset' }
  | { kind: 'provider-linked'; provider: string }
  | { kind: 'provider-unlinked'; provider: string }
  | { kind: 'mfa-enabled'; factor: FactorKind }
  | { kind: 'mfa-disabled'; factor: FactorKind | 'all' }
  | { kind: 'passkey-added'; name: string }
  | { kind: 'passkey-removed'; name: string }
  | { kind: 'email-changed'; oldEmail: string; newEmail: string }
  | { kind: 'recovery-started'; completesAt: Date; cancelUrl: string }
  | { kind: 'recovery-cancelled' }
  | { kind: 'recovery-completed' }
  | { kind: 'mfa-reset-by-admin' };

export interface SecurityNotices {
  /** Queues the notice's mail after the current answer; never throws. */
  notify(userId: string, notice: SecurityNotice): void;
}

/** For harnesses and configurations without mail: notices go nowhere. */
export const silentNotices: SecurityNotices = { notify: () => undefined };
