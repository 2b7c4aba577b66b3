import type { Transaction } from 'kysely';
import QRCode from 'qrcode';
import { recordAudit, auditClient } from '../../audit/index.ts';
import { newId, withTransaction, type Db, type TransactionContext } from '../../db/index.ts';
import { HttpCodes, HttpError } from '../../http/index.ts';
import type { Logger } from '../../observability/index.ts';
import { IdentityCodes } from '../errors.ts';
import {
  BackupCodeHasher,
  matchTotp,
  newBackupCodes,
  newSmsCode,
  newTotpSecret,
  SmsCodeHasher,
  totpFor,
} from './codes.ts';
import { FactorCodes } from './errors.ts';
import { userMfaDisabled, userMfaEnabled } from './events.ts';
import { outboxPublisher, publishSessionsRevoked, type EventPublisher } from '../events.ts';
import type { SessionCache } from '../sessions/session-cache.ts';
import { maskPhone, parsePhone, phoneProblemDetail } from '../sms/phone.ts';
import { SmsDeliveryError, type SmsSender } from '../sms/provider.ts';
import * as passkeyRepo from '../passkeys/repository.ts';
import type { AuthMethod } from '../tables.ts';
import * as mfaRepo from './repository.ts';
import { normalizePassword } from '../normalize.ts';
import type { PasswordHasher } from '../passwords.ts';
import * as repo from '../repository.ts';
import type { Client, MfaChallenge, SecondFactor } from '../schemas.ts';
import { hashToken, newOpaqueToken, TokenBox } from '../tokens.ts';
import { identityDb, type IdentityDb, type IdentityTables } from '../db.ts';
import type { IdentitySettings } from '../config.ts';
import { silentNotices, type SecurityNotices } from '../security-notices.ts';

type Trx = Transaction<IdentityTables>;

export interface TotpSetup {
  secret: string;
  otpauthUri: string;
  qrSvg: string;
}

export interface MfaStatus {
  totpEnabled: boolean;
  backupCodesLeft: number;
  /** The SMS number (masked), pending until confirmed; null: none. */
  sms: { phoneNumber: string; enabled: boolean } | null;
  passkeys: { id: string; name: string; createdAt: string; lastUsedAt: string | null }[];
}

/** A passkey answering a sign-in's MFA challenge (implemented by `PasskeyService`). */
export interface PasskeySecondFactor {
  verifySecondFactor(
    trx: Trx,
    userId: string,
    mfaTokenHash: string | null,
    assertion: { ceremonyId: string; response: unknown },
  ): Promise<boolean>;
}

/** The factor kinds events and notices name. */
type FactorName = 'totp' | 'sms' | 'passkey';

/**
 * The 403 of `POST /auth/mfa/totp/enable`: that route needs neither the password nor a backup
 * code (the code's generic description says so for the other MFA changes), only a code of the
 * secret the latest setup gave.
 */
const ENABLE_REJECTED_DETAIL =
  'Enabling needs a current 6-digit code from the authenticator app holding the secret of your latest `POST /auth/mfa/totp/setup` (a new setup replaces the previous secret), for the 30-second step now or the one either side, not used before; this code does not match. No password or backup code is needed here. Nothing was counted towards the lockout: try again with the code shown now.';

/** Which flow a second factor was asked in (audit data). */
type Flow = 'sign-in' | 'step-up' | 'disable' | 'backup-codes' | 'enrol';

export interface MfaServiceOptions {
  db: Db;
  config: IdentitySettings;
  hasher: PasswordHasher;
  appSecret: string;
  logger: Logger;
  /** The clock TOTP codes are checked against (milliseconds); tests may pin it. */
  now?: () => number;
  /** Mail to the account's owner on a factor enabled or removed; default: none. */
  notices?: SecurityNotices;
  /** Domain events (`user.mfa_enabled`, ...); none: written to the outbox without metrics. */
  events?: EventPublisher | null;
  /** The session-check cache, invalidated when a removed factor ends the other sessions. */
  sessions?: SessionCache | null;
  /** Sends SMS codes; null: the SMS factor is off. */
  sms?: SmsSender | null;
  /** Passkeys as a second factor. */
  passkeys?: PasskeySecondFactor | null;
}

type Method = 'totp' | 'backup-code' | 'sms' | 'passkey';
const methodOf = (factor: SecondFactor): Method =>
  'code' in factor
    ? 'totp'
    : 'backupCode' in factor
      ? 'backup-code'
      : 'smsCode' in factor
        ? 'sms'
        : 'passkey';

/** SMS codes are valid 5 minutes. */
const SMS_CODE_TTL_S = 300;

/**
 * TOTP enrolment, backup codes, the second step of a password sign-in, and the factor check
 * that step-up (re-authentication) reuses. Wrong codes count towards the account's lockout
 * exactly like wrong passwords.
 */
export class MfaService {
  readonly #db: IdentityDb;
  readonly #config: IdentitySettings;
  readonly #hasher: PasswordHasher;
  readonly #box: TokenBox;
  readonly #codes: BackupCodeHasher;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #notices: SecurityNotices;
  readonly #events: EventPublisher;
  readonly #sessions: SessionCache | null;
  readonly #sms: SmsSender | null;
  readonly #smsCodes: SmsCodeHasher;
  #passkeys: PasskeySecondFactor | null;

  constructor(options: MfaServiceOptions) {
    this.#db = identityDb(options.db);
    this.#config = options.config;
    this.#hasher = options.hasher;
    // Its own key (another HKDF purpose than the refresh-token box): one key, one use.
    this.#box = new TokenBox(options.appSecret, 'identity mfa totp secret');
    this.#codes = new BackupCodeHasher(options.appSecret);
    this.#log = options.logger;
    this.#now = options.now ?? Date.now;
    this.#notices = options.notices ?? silentNotices;
    this.#events = options.events ?? outboxPublisher;
    this.#sessions = options.sessions ?? null;
    this.#sms = options.sms ?? null;
    this.#smsCodes = new SmsCodeHasher(options.appSecret);
    this.#passkeys = options.passkeys ?? null;
  }

  /** Passkeys as a second factor (the passkey service is built after this one). */
  usePasskeys(passkeys: PasskeySecondFactor): void {
    this.#passkeys = passkeys;
  }

  /**
   * Deletes every second factor of the account (TOTP, backup codes, SMS number and codes,
   * passkeys) and its pending MFA and WebAuthn challenges, in one transaction (the caller's when
   * given). For lost-device recovery and the admin reset, which audit and notify themselves.
   */
  async removeAllFactors(userId: string, within?: Trx): Promise<void> {
    await (within
      ? mfaRepo.deleteAllFactors(within, userId)
      : withTransaction(this.#db, (trx) => mfaRepo.deleteAllFactors(trx, userId)));
  }

  /**
   * Whether the account signs in with a second factor (read in `trx` when given): an enabled
   * authenticator app or SMS number, or a passkey.
   */
  async mfaEnabled(userId: string, trx?: Trx): Promise<boolean> {
    const f = await mfaRepo.factorsOf(trx ?? this.#db, userId);
    return f.totp || f.sms !== null || f.passkeys > 0;
  }

  async status(userId: string): Promise<MfaStatus> {
    const [totpEnabled, backupCodesLeft, sms, passkeys] = await Promise.all([
      mfaRepo.totpEnabled(this.#db, userId),
      mfaRepo.backupCodesLeft(this.#db, userId),
      mfaRepo.findSms(this.#db, userId),
      passkeyRepo.listPasskeys(this.#db, userId),
    ]);
    return {
      totpEnabled,
      backupCodesLeft,
      sms: sms ? { phoneNumber: maskPhone(sms.phone), enabled: sms.enabled } : null,
      passkeys: passkeys.map((p) => ({
        id: p.id,
        name: p.name,
        createdAt: p.created_at.toISOString(),
        lastUsedAt: p.last_used_at?.toISOString() ?? null,
      })),
    };
  }

  /** A new pending secret (replacing a pending one) with its otpauth URI and QR code. */
  async setup(userId: string, client: Client): Promise<TotpSetup> {
    const secret = newTotpSecret();
    const email = await withTransaction(this.#db, async (trx) => {
      const account = await mfaRepo.mfaAccount(trx, userId);
      if (!account) throw new HttpError(HttpCodes.UNAUTHORIZED);
      const saved = await mfaRepo.savePendingTotp(trx, userId, this.#box.seal(secret));
      if (!saved) throw new HttpError(IdentityCodes.MFA_ALREADY_ENABLED);
      await this.#audit(trx, 'auth.mfa.setup', userId, userId, client, { method: 'totp' });
      return account.email;
    });
    const otpauthUri = totpFor(secret, email, this.#config.mfa.totpIssuer).toString();
    const qrSvg = await QRCode.toString(otpauthUri, { type: 'svg', errorCorrectionLevel: 'M' });
    return { secret, otpauthUri, qrSvg };
  }

  /** Turns the pending secret on with a first valid code; returns the backup codes (shown once). */
  async enable(userId: string, code: string, client: Client): Promise<string[]> {
    const codes = await withTransaction(this.#db, async (trx) => {
      const totp = await mfaRepo.findTotp(trx, userId, { forUpdate: true });
      if (!totp) throw new HttpError(IdentityCodes.MFA_NOT_SET_UP);
      if (totp.enabled) throw new HttpError(IdentityCodes.MFA_ALREADY_ENABLED);
      const step = this.#match(totp, code);
      // Not counted towards the lockout: whoever holds this session was just given the secret.
      if (step === null || !(await mfaRepo.useTotpStep(trx, userId, step, { enable: true })))
        throw new HttpError(IdentityCodes.MFA_REJECTED, { detail: ENABLE_REJECTED_DETAIL });
      const codes = await this.#replaceBackupCodes(trx, userId);
      await this.#audit(trx, 'auth.mfa.enable', userId, userId, client, {
        method: 'totp',
        backupCodes: codes.length,
      });
      await this.#publish(trx, 'enabled', userId, 'totp', client);
      return codes;
    });
    this.#notices.notify(userId, { kind: 'mfa-enabled', factor: 'totp' });
    return codes;
  }

  /**
   * Removes the authenticator (and the backup codes when no other factor is left); needs the
   * password and a second factor. The user's other sessions end; `keepSessionId` stays.
   */
  async disable(
    userId: string,
    input: { password: string } & SecondFactor,
    client: Client,
    keepSessionId: string | null = null,
  ): Promise<void> {
    await this.#withPasswordAndFactor(userId, input, client, 'disable', async (trx, ctx) => {
      if (!(await mfaRepo.deleteTotp(trx, userId)))
        throw new HttpError(IdentityCodes.MFA_NOT_SET_UP);
      await this.factorRemoved(trx, ctx, { userId, factor: 'totp', keepSessionId, client });
    });
    this.#notices.notify(userId, { kind: 'mfa-disabled', factor: 'totp' });
  }

  /**
   * After a factor was removed, in its transaction: the backup codes go when no factor is left,
   * the pending challenges go, every other session of the user ends (a factor removed by whoever
   * stole a session must not leave them signed in elsewhere), audited and published.
   */
  async factorRemoved(
    trx: Trx,
    ctx: TransactionContext,
    change: { userId: string; factor: FactorName; keepSessionId: string | null; client: Client },
  ): Promise<void> {
    const { userId, client } = change;
    const left = await mfaRepo.factorsOf(trx, userId);
    if (!left.totp && left.sms === null && left.passkeys === 0)
      await mfaRepo.replaceBackupCodes(trx, userId, []);
    await mfaRepo.deleteChallenges(trx, userId);
    const revoked = await repo.revokeSessions(
      trx,
      change.keepSessionId === null
        ? { userId }
        : { userId, exceptSessionId: change.keepSessionId },
      'mfa-disabled',
    );
    await publishSessionsRevoked(this.#events, trx, {
      userId,
      sessionIds: revoked,
      reason: 'mfa-disabled',
      requestId: client.requestId,
    });
    ctx.afterCommit(() => this.#sessions?.invalidateUser(userId));
    await this.#audit(trx, 'auth.mfa.disable', userId, userId, client, {
      method: change.factor,
      sessionsRevoked: revoked.length,
    });
    if (change.factor !== 'passkey')
      await this.#publish(trx, 'disabled', userId, change.factor, client);
  }

  /** Backup codes for an account whose first factor this is (none otherwise: they exist). */
  async firstFactorCodes(trx: Trx, userId: string): Promise<string[]> {
    if ((await mfaRepo.backupCodesLeft(trx, userId)) > 0) return [];
    return this.#replaceBackupCodes(trx, userId);
  }

  // SMS -----------------------------------------------------------------------------------------

  #smsSender(): SmsSender {
    if (!this.#sms) throw new HttpError(FactorCodes.SMS_UNAVAILABLE);
    return this.#sms;
  }

  /** Starts enrolling a phone number: stored pending, a code sent to it. */
  async enrolSms(
    userId: string,
    phoneNumber: string,
    client: Client,
  ): Promise<{ phoneNumber: string; expiresIn: number }> {
    const sender = this.#smsSender();
    const sms = this.#config.factors.sms;
    const parsed = parsePhone(phoneNumber, {
      defaultRegion: sms.defaultRegion,
      refusePremium: sms.refusePremium,
    });
    if ('problem' in parsed)
      throw new HttpError(FactorCodes.INVALID_PHONE_NUMBER, {
        detail: phoneProblemDetail(parsed.problem),
        errors: [{ path: '/body/phoneNumber', message: parsed.problem }],
      });
    const phone = parsed.e164;
    const code = newSmsCode();
    await withTransaction(this.#db, async (trx) => {
      if (!(await mfaRepo.mfaAccount(trx, userId))) throw new HttpError(HttpCodes.UNAUTHORIZED);
      if (!(await mfaRepo.savePendingSms(trx, userId, phone)))
        throw new HttpError(FactorCodes.SMS_ALREADY_ENABLED);
      await this.#newSmsCode(trx, userId, phone, 'enrol', null, code);
      await this.#audit(trx, 'auth.mfa.setup', userId, userId, client, { method: 'sms' });
    });
    await this.#deliver(sender, phone, code);
    return { phoneNumber: phone, expiresIn: SMS_CODE_TTL_S };
  }

  /** Confirms the pending number with its code; returns backup codes when it is the first factor. */
  async confirmSms(userId: string, code: string, client: Client): Promise<string[]> {
    this.#smsSender();
    const outcome = await withTransaction(this.#db, async (trx) => {
      if (await mfaRepo.isLocked(trx, userId, { forUpdate: true })) return { ok: false as const };
      const pending = await mfaRepo.findSms(trx, userId, { forUpdate: true });
      if (!pending) throw new HttpError(FactorCodes.SMS_NOT_SET_UP);
      if (pending.enabled) throw new HttpError(FactorCodes.SMS_ALREADY_ENABLED);
      const live = await mfaRepo.lockLiveSmsCode(trx, userId, 'enrol', null);
      if (
        !live ||
        live.phone !== pending.phone ||
        !this.#smsCodes.matches(live.code_hash, userId, 'enrol', code) ||
        !(await mfaRepo.spendSmsCode(trx, live.id))
      ) {
        await this.countFactorFailure(trx, userId, 'sms', client, 'enrol');
        return { ok: false as const };
      }
      await mfaRepo.enableSms(trx, userId, pending.phone);
      const codes = await this.firstFactorCodes(trx, userId);
      await this.#audit(trx, 'auth.mfa.enable', userId, userId, client, {
        method: 'sms',
        backupCodes: codes.length,
      });
      await this.#publish(trx, 'enabled', userId, 'sms', client);
      return { ok: true as const, codes };
    });
    if (!outcome.ok)
      throw new HttpError(IdentityCodes.MFA_REJECTED, {
        detail:
          'The code does not match the latest one sent to the pending number, or it expired (5 minutes) or was used. Wrong codes count towards the lockout.',
      });
    this.#notices.notify(userId, { kind: 'mfa-enabled', factor: 'sms' });
    return outcome.codes;
  }

  /**
   * Sends a sign-in code for a pending MFA challenge to the account's enabled number. Nothing
   * is sent, silently, for an unknown, spent, expired or foreign challenge or an account without
   * a number: the caller sees the same answer.
   */
  async sendSignInCode(mfaToken: string, client: Client): Promise<void> {
    const sender = this.#smsSender();
    const tokenHash = hashToken(mfaToken);
    const code = newSmsCode();
    const phone = await withTransaction(this.#db, async (trx) => {
      const challenge = await mfaRepo.liveChallengeUser(trx, tokenHash);
      if (!challenge || challenge.ip !== client.ip || challenge.user_agent !== client.userAgent)
        return null;
      const sms = await mfaRepo.findSms(trx, challenge.user_id, { forUpdate: true });
      if (!sms?.enabled) return null;
      await this.#newSmsCode(trx, challenge.user_id, sms.phone, 'sign-in', tokenHash, code);
      return sms.phone;
    });
    if (phone !== null) await this.#deliver(sender, phone, code);
  }

  /** Sends a code to the signed-in user's enabled number, for a change that needs a factor. */
  async sendStepUpCode(userId: string): Promise<void> {
    const sender = this.#smsSender();
    const code = newSmsCode();
    const phone = await withTransaction(this.#db, async (trx) => {
      const sms = await mfaRepo.findSms(trx, userId, { forUpdate: true });
      if (!sms?.enabled) throw new HttpError(FactorCodes.SMS_NOT_SET_UP);
      await this.#newSmsCode(trx, userId, sms.phone, 'step-up', null, code);
      return sms.phone;
    });
    await this.#deliver(sender, phone, code);
  }

  /** Removes the SMS number (pending or enabled); needs the password and a second factor. */
  async disableSms(
    userId: string,
    input: { password: string } & SecondFactor,
    client: Client,
    keepSessionId: string | null = null,
  ): Promise<void> {
    const pending = await mfaRepo.findSms(this.#db, userId);
    if (!pending) throw new HttpError(FactorCodes.SMS_NOT_SET_UP);
    if (!pending.enabled) {
      // A number never confirmed protects nothing: it goes without a factor.
      await mfaRepo.deleteSms(this.#db, userId);
      return;
    }
    await this.#withPasswordAndFactor(userId, input, client, 'disable', async (trx, ctx) => {
      if (!(await mfaRepo.deleteSms(trx, userId))) throw new HttpError(FactorCodes.SMS_NOT_SET_UP);
      await this.factorRemoved(trx, ctx, { userId, factor: 'sms', keepSessionId, client });
    });
    this.#notices.notify(userId, { kind: 'mfa-disabled', factor: 'sms' });
  }

  /** Checks the hourly limits, then stores the code's hash (replacing older unspent ones). */
  async #newSmsCode(
    trx: Trx,
    userId: string,
    phone: string,
    purpose: 'enrol' | 'sign-in' | 'step-up',
    challengeHash: string | null,
    code: string,
  ): Promise<void> {
    const limits = this.#config.factors.sms;
    const sent = await mfaRepo.smsSentLastHour(trx, userId, phone);
    if (sent.byNumber >= limits.maxPerNumber || sent.byAccount >= limits.maxPerAccount)
      throw new HttpError(FactorCodes.SMS_LIMIT_REACHED, { headers: { 'retry-after': '3600' } });
    await mfaRepo.insertSmsCode(trx, {
      id: newId(),
      userId,
      phone,
      purpose,
      challengeHash,
      codeHash: this.#smsCodes.hash(userId, purpose, code),
      ttlS: SMS_CODE_TTL_S,
    });
  }

  async #deliver(sender: SmsSender, phone: string, code: string): Promise<void> {
    const issuer = this.#config.mfa.totpIssuer;
    try {
      await sender.send({
        to: phone,
        body: `${code} is your ${issuer} verification code. It expires in 5 minutes. Do not share it.`,
      });
    } catch (error) {
      // The code is never logged; the provider's status and error code are.
      this.#log.warn(
        {
          provider: sender.name,
          status: error instanceof SmsDeliveryError ? error.status : null,
          code: error instanceof SmsDeliveryError ? error.code : null,
        },
        'SMS not sent',
      );
      throw new HttpError(FactorCodes.SMS_SEND_FAILED);
    }
  }

  /** Ten new backup codes; the old ones stop working. Needs the password and a second factor. */
  async regenerateBackupCodes(
    userId: string,
    input: { password: string } & SecondFactor,
    client: Client,
  ): Promise<string[]> {
    return this.#withPasswordAndFactor(userId, input, client, 'backup-codes', async (trx) => {
      const codes = await this.#replaceBackupCodes(trx, userId);
      await this.#audit(trx, 'auth.mfa.backup-codes', userId, userId, client, {
        count: codes.length,
      });
      return codes;
    });
  }

  /**
   * For step-up (re-authentication): true when the factor is valid and unused. The same rules
   * as sign-in: a TOTP step is accepted once, a backup code once, a locked account is refused
   * (not counted), and a wrong factor counts towards the lockout.
   */
  async verifySecondFactor(
    userId: string,
    factor: SecondFactor,
    client: Client | null = null,
  ): Promise<boolean> {
    const ok = await withTransaction(this.#db, async (trx) => {
      // The account row stays locked to the end: no concurrent factor outruns a lockout.
      if (await mfaRepo.isLocked(trx, userId, { forUpdate: true })) return false;
      if (await this.#useFactor(trx, userId, factor, client, 'step-up', null)) return true;
      await this.countFactorFailure(trx, userId, methodOf(factor), client, 'step-up');
      return false;
    });
    return ok;
  }

  /**
   * Called by a password sign-in that succeeded: a challenge when the account has a second
   * factor (the password's rehash, if due, is stored; the failure counters stay until the
   * second factor passes), null otherwise. In the sign-in's transaction when given.
   */
  async challenge(
    userId: string,
    options: { rememberMe: boolean; newHash: string | null },
    client: Client,
    within?: Trx,
  ): Promise<MfaChallenge | null> {
    if (!(await this.mfaEnabled(userId, within))) return null;
    const mfaToken = newOpaqueToken();
    const work = async (trx: Trx) => {
      if (options.newHash !== null) await mfaRepo.replacePasswordHash(trx, userId, options.newHash);
      await mfaRepo.insertChallenge(trx, {
        tokenHash: hashToken(mfaToken),
        userId,
        rememberMe: options.rememberMe,
        ip: client.ip,
        userAgent: client.userAgent,
        ttlS: this.#config.mfa.tokenTtlS,
      });
    };
    await (within ? work(within) : withTransaction(this.#db, work));
    return { mfaRequired: true, mfaToken };
  }

  /**
   * The second step of a sign-in: spends the challenge when the factor is valid and runs
   * `signIn` (the session) in the same transaction. Every refusal is the same 401.
   */
  async redeem<T>(
    mfaToken: string,
    factor: SecondFactor,
    client: Client,
    signIn: (
      trx: Trx,
      user: { userId: string; rememberMe: boolean; amr: AuthMethod[] },
    ) => Promise<T>,
  ): Promise<T> {
    const tokenHash = hashToken(mfaToken);
    const outcome = await withTransaction(this.#db, async (trx) => {
      const challenge = await mfaRepo.lockLiveChallenge(trx, tokenHash);
      if (!challenge || challenge.ip !== client.ip || challenge.user_agent !== client.userAgent)
        return { ok: false as const };
      const userId = challenge.user_id;
      const event = (outcome: repo.LoginEventRow['outcome']) => ({
        id: newId(),
        userId,
        outcome,
        ip: client.ip,
        userAgent: client.userAgent,
        sessionId: null,
      });
      // The account row stays locked to the end: concurrent second steps (one challenge each)
      // are decided one at a time, and none passes once a wrong one locked the account.
      if (await mfaRepo.isLocked(trx, userId, { forUpdate: true })) {
        await repo.insertLoginEvent(trx, event('locked'));
        return { ok: false as const };
      }
      if (!(await this.#useFactor(trx, userId, factor, client, 'sign-in', tokenHash))) {
        await repo.insertLoginEvent(trx, event('failure'));
        await this.countFactorFailure(trx, userId, methodOf(factor), client, 'sign-in');
        return { ok: false as const };
      }
      await mfaRepo.spendChallenge(trx, tokenHash);
      return {
        ok: true as const,
        value: await signIn(trx, {
          userId,
          rememberMe: challenge.remember_me,
          amr: this.#amrOf(factor),
        }),
      };
    });
    if (!outcome.ok) throw new HttpError(IdentityCodes.INVALID_MFA);
    return outcome.value;
  }

  /**
   * The session's methods after a password and this factor. `otp` marks a second factor for the
   * roles that require MFA (`rbac`); an SMS code carries it only when `AUTH_SMS_SATISFIES_MFA_ROLES`
   * says so (SIM swap), a passkey carries `hwk` too.
   */
  #amrOf(factor: SecondFactor): AuthMethod[] {
    if ('smsCode' in factor)
      return this.#config.factors.sms.satisfiesMfaRoles ? ['pwd', 'sms', 'otp'] : ['pwd', 'sms'];
    if ('passkey' in factor) return ['pwd', 'hwk', 'otp'];
    return ['pwd', 'otp'];
  }

  #match(totp: mfaRepo.TotpRow, code: string): number | null {
    const secret = this.#box.open(totp.secret_sealed);
    if (secret === null) {
      this.#log.error('a stored TOTP secret does not open with the current APP_SECRET');
      return null;
    }
    return matchTotp(secret, code, { nowMs: this.#now(), lastStep: totp.last_used_step });
  }

  /**
   * Accepts and spends the factor: the code's time step, the backup code, the SMS code (of this
   * sign-in's challenge, or a step-up one), the passkey's ceremony. The account row is locked by
   * the caller, so the factor checks and changes of one user run one at a time.
   */
  async #useFactor(
    trx: Trx,
    userId: string,
    factor: SecondFactor,
    client: Client | null,
    flow: Flow,
    challengeHash: string | null,
  ): Promise<boolean> {
    if ('code' in factor) {
      const totp = await mfaRepo.findTotp(trx, userId, { forUpdate: true });
      if (!totp?.enabled) return false;
      const step = this.#match(totp, factor.code);
      return step !== null && mfaRepo.useTotpStep(trx, userId, step, { enable: false });
    }
    if ('smsCode' in factor) {
      const sms = await mfaRepo.findSms(trx, userId, { forUpdate: true });
      if (!sms?.enabled) return false;
      const purpose = flow === 'sign-in' ? 'sign-in' : 'step-up';
      const live = await mfaRepo.lockLiveSmsCode(
        trx,
        userId,
        purpose,
        flow === 'sign-in' ? challengeHash : null,
      );
      return (
        live !== undefined &&
        live.phone === sms.phone &&
        this.#smsCodes.matches(live.code_hash, userId, purpose, factor.smsCode) &&
        (await mfaRepo.spendSmsCode(trx, live.id))
      );
    }
    if ('passkey' in factor) {
      if (!this.#passkeys) return false;
      return this.#passkeys.verifySecondFactor(
        trx,
        userId,
        flow === 'sign-in' ? challengeHash : null,
        factor.passkey,
      );
    }
    if (!(await this.mfaEnabled(userId, trx))) return false;
    const used = await mfaRepo.useBackupCode(
      trx,
      userId,
      this.#codes.hash(userId, factor.backupCode),
    );
    if (used) {
      await this.#audit(trx, 'auth.mfa.backup-code-used', userId, userId, client, {
        flow,
        left: await mfaRepo.backupCodesLeft(trx, userId),
      });
    }
    return used;
  }

  /** A wrong factor or password: counted exactly like a wrong sign-in password, and audited. */
  async countFactorFailure(
    trx: Trx,
    userId: string,
    method: Method | 'password',
    client: Client | null,
    flow: Flow,
  ): Promise<void> {
    const locked = await repo.recordFailedLogin(trx, userId, this.#config.lockout);
    await this.#audit(trx, 'auth.mfa.failure', flow === 'sign-in' ? null : userId, userId, client, {
      flow,
      method,
      locked,
    });
    if (locked)
      this.#log.warn(
        { userId, ip: client?.ip ?? null },
        'account locked after failed second factors',
      );
  }

  async #withPasswordAndFactor<T>(
    userId: string,
    input: { password: string } & SecondFactor,
    client: Client,
    flow: Flow,
    change: (trx: Trx, ctx: TransactionContext) => Promise<T>,
  ): Promise<T> {
    const factor: SecondFactor =
      'code' in input
        ? { code: input.code }
        : 'backupCode' in input
          ? { backupCode: input.backupCode }
          : 'smsCode' in input
            ? { smsCode: input.smsCode }
            : { passkey: input.passkey };
    if (!(await this.mfaEnabled(userId))) throw new HttpError(IdentityCodes.MFA_NOT_SET_UP);
    const account = await mfaRepo.mfaAccount(this.#db, userId);
    // argon2 runs whatever the lock state, so a locked account answers in the same time.
    const { ok } = await this.#hasher.verify(
      account?.password_hash ?? null,
      normalizePassword(input.password),
    );
    const outcome = await withTransaction(this.#db, async (trx, ctx) => {
      if (!account || (await mfaRepo.isLocked(trx, userId, { forUpdate: true })))
        return { ok: false as const };
      if (!ok) {
        await this.countFactorFailure(trx, userId, 'password', client, flow);
        return { ok: false as const };
      }
      if (!(await this.#useFactor(trx, userId, factor, client, flow, null))) {
        await this.countFactorFailure(trx, userId, methodOf(factor), client, flow);
        return { ok: false as const };
      }
      return { ok: true as const, value: await change(trx, ctx) };
    });
    if (!outcome.ok) throw new HttpError(IdentityCodes.MFA_REJECTED);
    return outcome.value;
  }

  async #replaceBackupCodes(trx: Trx, userId: string): Promise<string[]> {
    const codes = newBackupCodes();
    await mfaRepo.replaceBackupCodes(
      trx,
      userId,
      codes.map((code) => ({ id: newId(), hash: this.#codes.hash(userId, code) })),
    );
    return codes;
  }

  /** `user.mfa_enabled` or `user.mfa_disabled`, in the change's transaction. */
  async #publish(
    trx: Trx,
    what: 'enabled' | 'disabled',
    userId: string,
    factor: FactorName,
    client: Client,
  ): Promise<void> {
    await this.#events.publish(trx, what === 'enabled' ? userMfaEnabled : userMfaDisabled, {
      data: { userId, factor },
      subject: { type: 'user', id: userId },
      actorId: userId,
      ownerId: userId,
      requestId: client.requestId,
    });
  }

  #audit(
    trx: Trx,
    action: string,
    actorId: string | null,
    userId: string,
    client: Client | null,
    data: Record<string, unknown>,
  ): Promise<void> {
    return recordAudit(trx, {
      action,
      actorId,
      subjectType: 'user',
      subjectId: userId,
      ...auditClient(client),
      data,
    });
  }
}
