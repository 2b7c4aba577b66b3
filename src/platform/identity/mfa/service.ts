import type { Transaction } from 'kysely';
import QRCode from 'qrcode';
import { recordAudit, auditClient } from '../../audit/index.ts';
import { newId, withTransaction, type Db } from '../../db/index.ts';
import { HttpCodes, HttpError } from '../../http/index.ts';
import type { Logger } from '../../observability/index.ts';
import { IdentityCodes } from '../errors.ts';
import { BackupCodeHasher, matchTotp, newBackupCodes, newTotpSecret, totpFor } from './codes.ts';
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
}

/**
 * The 403 of `POST /auth/mfa/totp/enable`: that route needs neither the password nor a backup
 * code (the code's generic description says so for the other MFA changes), only a code of the
 * secret the latest setup gave.
 */
const ENABLE_REJECTED_DETAIL =
  'Enabling needs a current 6-digit code from the authenticator app holding the secret of your latest `POST /auth/mfa/totp/setup` (a new setup replaces the previous secret), for the 30-second step now or the one either side, not used before; this code does not match. No password or backup code is needed here. Nothing was counted towards the lockout: try again with the code shown now.';

/** Which flow a second factor was asked in (audit data). */
type Flow = 'sign-in' | 'step-up' | 'disable' | 'backup-codes';

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
}

const methodOf = (factor: SecondFactor) => ('code' in factor ? 'totp' : 'backup-code');

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
    const [totpEnabled, backupCodesLeft] = await Promise.all([
      mfaRepo.totpEnabled(this.#db, userId),
      mfaRepo.backupCodesLeft(this.#db, userId),
    ]);
    return { totpEnabled, backupCodesLeft };
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
      return codes;
    });
    this.#notices.notify(userId, { kind: 'mfa-enabled', factor: 'totp' });
    return codes;
  }

  /** Removes the authenticator and the backup codes; needs the password and a second factor. */
  async disable(
    userId: string,
    input: { password: string } & SecondFactor,
    client: Client,
  ): Promise<void> {
    await this.#withPasswordAndFactor(userId, input, client, 'disable', async (trx) => {
      await mfaRepo.deleteTotp(trx, userId);
      await mfaRepo.replaceBackupCodes(trx, userId, []);
      await mfaRepo.deleteChallenges(trx, userId);
      await this.#audit(trx, 'auth.mfa.disable', userId, userId, client, { method: 'totp' });
    });
    this.#notices.notify(userId, { kind: 'mfa-disabled', factor: 'totp' });
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
      if (await this.#useFactor(trx, userId, factor, client, 'step-up')) return true;
      await this.#countFailure(trx, userId, methodOf(factor), client, 'step-up');
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
    signIn: (trx: Trx, user: { userId: string; rememberMe: boolean }) => Promise<T>,
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
      if (!(await this.#useFactor(trx, userId, factor, client, 'sign-in'))) {
        await repo.insertLoginEvent(trx, event('failure'));
        await this.#countFailure(trx, userId, methodOf(factor), client, 'sign-in');
        return { ok: false as const };
      }
      await mfaRepo.spendChallenge(trx, tokenHash);
      return {
        ok: true as const,
        value: await signIn(trx, { userId, rememberMe: challenge.remember_me }),
      };
    });
    if (!outcome.ok) throw new HttpError(IdentityCodes.INVALID_MFA);
    return outcome.value;
  }

  #match(totp: mfaRepo.TotpRow, code: string): number | null {
    const secret = this.#box.open(totp.secret_sealed);
    if (secret === null) {
      this.#log.error('a stored TOTP secret does not open with the current APP_SECRET');
      return null;
    }
    return matchTotp(secret, code, { nowMs: this.#now(), lastStep: totp.last_used_step });
  }

  /** Accepts and spends the factor: the code's time step, or the backup code. */
  async #useFactor(
    trx: Trx,
    userId: string,
    factor: SecondFactor,
    client: Client | null,
    flow: Flow,
  ): Promise<boolean> {
    // Locked: the factor checks and changes of one user run one at a time.
    const totp = await mfaRepo.findTotp(trx, userId, { forUpdate: true });
    if (!totp?.enabled) return false;
    if ('code' in factor) {
      const step = this.#match(totp, factor.code);
      return step !== null && mfaRepo.useTotpStep(trx, userId, step, { enable: false });
    }
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
  async #countFailure(
    trx: Trx,
    userId: string,
    method: 'totp' | 'backup-code' | 'password',
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
    change: (trx: Trx) => Promise<T>,
  ): Promise<T> {
    const factor: SecondFactor =
      'code' in input ? { code: input.code } : { backupCode: input.backupCode };
    if (!(await this.mfaEnabled(userId))) throw new HttpError(IdentityCodes.MFA_NOT_SET_UP);
    const account = await mfaRepo.mfaAccount(this.#db, userId);
    // argon2 runs whatever the lock state, so a locked account answers in the same time.
    const { ok } = await this.#hasher.verify(
      account?.password_hash ?? null,
      normalizePassword(input.password),
    );
    const outcome = await withTransaction(this.#db, async (trx) => {
      if (!account || (await mfaRepo.isLocked(trx, userId, { forUpdate: true })))
        return { ok: false as const };
      if (!ok) {
        await this.#countFailure(trx, userId, 'password', client, flow);
        return { ok: false as const };
      }
      if (!(await this.#useFactor(trx, userId, factor, client, flow))) {
        await this.#countFailure(trx, userId, methodOf(factor), client, flow);
        return { ok: false as const };
      }
      return { ok: true as const, value: await change(trx) };
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
