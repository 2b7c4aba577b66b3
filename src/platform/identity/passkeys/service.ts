import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type AuthenticatorTransport,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import type { Transaction } from 'kysely';
import { auditClient, recordAudit } from '../../audit/index.ts';
import { newId, withTransaction, type Db } from '../../db/index.ts';
import { HttpCodes, HttpError } from '../../http/index.ts';
import type { Logger } from '../../observability/index.ts';
import type { IdentitySettings } from '../config.ts';
import { identityDb, type IdentityDb, type IdentityTables } from '../db.ts';
import { outboxPublisher, type EventPublisher } from '../events.ts';
import { FactorCodes } from '../mfa/errors.ts';
import { userPasskeyAdded, userPasskeyRemoved } from '../mfa/events.ts';
import * as mfaRepo from '../mfa/repository.ts';
import type { MfaService, PasskeySecondFactor } from '../mfa/service.ts';
import * as repo from '../repository.ts';
import type { Client, OpenedSession, TokenPair } from '../schemas.ts';
import { silentNotices, type SecurityNotices } from '../security-notices.ts';
import type { SessionCache } from '../sessions/session-cache.ts';
import type { IdentityService } from '../sessions/service.ts';
import { hashToken } from '../tokens.ts';
import * as passkeyRepo from './repository.ts';

type Trx = Transaction<IdentityTables>;

export interface PasskeyServiceOptions {
  db: Db;
  config: IdentitySettings;
  logger: Logger;
  mfa: MfaService | null;
  events?: EventPublisher | null;
  sessions?: SessionCache | null;
  notices?: SecurityNotices;
}

export interface Passkey {
  id: string;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
}

/** A ceremony's id and its WebAuthn options (JSON for the browser's WebAuthn API). */
export interface Ceremony {
  ceremonyId: string;
  options: Record<string, unknown>;
}

const toPasskey = (p: passkeyRepo.PasskeyRow): Passkey => ({
  id: p.id,
  name: p.name,
  createdAt: p.created_at.toISOString(),
  lastUsedAt: p.last_used_at?.toISOString() ?? null,
});

/** The WebAuthn user handle: the account id's 16 bytes (no address or name in it). */
const userHandle = (userId: string): Uint8Array<ArrayBuffer> =>
  new Uint8Array(Buffer.from(userId.replace(/-/g, ''), 'hex'));
const handleOf = (userId: string): string => Buffer.from(userHandle(userId)).toString('base64url');

/**
 * Passkeys (WebAuthn) through @simplewebauthn/server: registration (attestation `none`, user
 * verification required, resident key), passwordless sign-in (a normal session: the same
 * session, refresh token, sign-in event, audit and lockout rules as a password sign-in) and the
 * second factor of a password sign-in. Every ceremony's challenge is stored server-side, bound
 * to its purpose (and user or MFA challenge), single use and short-lived; signature counters
 * must move forward, and a credential whose counter went back is flagged and refused from then
 * on (a cloned authenticator).
 */
export class PasskeyService implements PasskeySecondFactor {
  readonly #db: IdentityDb;
  readonly #config: IdentitySettings;
  readonly #log: Logger;
  readonly #mfa: MfaService | null;
  readonly #events: EventPublisher;
  readonly #notices: SecurityNotices;

  constructor(options: PasskeyServiceOptions) {
    this.#db = identityDb(options.db);
    this.#config = options.config;
    this.#log = options.logger;
    this.#mfa = options.mfa;
    this.#events = options.events ?? outboxPublisher;
    this.#notices = options.notices ?? silentNotices;
  }

  get #rp() {
    return this.#config.factors.webauthn;
  }

  async list(userId: string): Promise<Passkey[]> {
    return (await passkeyRepo.listPasskeys(this.#db, userId)).map(toPasskey);
  }

  /** Options for `navigator.credentials.create`, for the signed-in user. */
  async registrationOptions(userId: string): Promise<Ceremony> {
    const account = await repo.findUserContact(this.#db, userId);
    if (!account) throw new HttpError(HttpCodes.UNAUTHORIZED);
    const existing = await passkeyRepo.listPasskeys(this.#db, userId);
    const options = await generateRegistrationOptions({
      rpName: this.#rp.rpName,
      rpID: this.#rp.rpId,
      userName: account.username,
      userID: userHandle(userId),
      attestationType: 'none',
      timeout: this.#rp.challengeTtlS * 1_000,
      excludeCredentials: existing.map((p) => ({
        id: p.credential_id,
        transports: p.transports as AuthenticatorTransport[],
      })),
      authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
    });
    const ceremonyId = newId();
    await passkeyRepo.insertCeremony(this.#db, {
      id: ceremonyId,
      purpose: 'registration',
      challenge: options.challenge,
      userId,
      mfaTokenHash: null,
      ttlS: this.#rp.challengeTtlS,
    });
    return { ceremonyId, options: { ...options } };
  }

  /** Verifies the new credential and stores it; backup codes when it is the first factor. */
  async register(
    userId: string,
    input: { ceremonyId: string; name?: string; response: RegistrationResponseJSON },
    client: Client,
  ): Promise<{ passkey: Passkey; backupCodes: string[] }> {
    const ceremony = await passkeyRepo.spendCeremony(this.#db, input.ceremonyId, 'registration');
    if (!ceremony || ceremony.user_id !== userId) throw this.#rejected('unknown ceremony');
    let verified;
    try {
      verified = await verifyRegistrationResponse({
        response: input.response,
        expectedChallenge: ceremony.challenge,
        expectedOrigin: [...this.#rp.origins],
        expectedRPID: this.#rp.rpId,
        requireUserVerification: true,
      });
    } catch (error) {
      throw this.#rejected(error instanceof Error ? error.message : 'error');
    }
    if (!verified.verified) throw this.#rejected('not verified');
    const info = verified.registrationInfo;
    const id = newId();
    const name = input.name?.trim() || `Passkey ${new Date().toISOString().slice(0, 10)}`;
    const out = await withTransaction(this.#db, async (trx) => {
      const inserted = await passkeyRepo.insertPasskey(trx, {
        id,
        userId,
        credentialId: info.credential.id,
        publicKey: Buffer.from(info.credential.publicKey),
        counter: info.credential.counter,
        transports: info.credential.transports ?? [],
        name,
        deviceType: info.credentialDeviceType,
        backedUp: info.credentialBackedUp,
      });
      if (!inserted) throw this.#rejected('credential already registered');
      const backupCodes = this.#mfa ? await this.#mfa.firstFactorCodes(trx, userId) : [];
      await this.#audit(trx, 'auth.passkey.add', userId, client, { passkeyId: id });
      await this.#events.publish(trx, userPasskeyAdded, {
        data: { userId, passkeyId: id },
        subject: { type: 'user', id: userId },
        actorId: userId,
        ownerId: userId,
        requestId: client.requestId,
      });
      const row = (await passkeyRepo.listPasskeys(trx, userId)).find((p) => p.id === id);
      return { passkey: toPasskey(row as passkeyRepo.PasskeyRow), backupCodes };
    });
    this.#notices.notify(userId, { kind: 'passkey-added', name });
    return out;
  }

  async rename(userId: string, id: string, name: string): Promise<Passkey> {
    const row = await passkeyRepo.renamePasskey(this.#db, userId, id, name.trim());
    if (!row) throw new HttpError(FactorCodes.PASSKEY_NOT_FOUND);
    return toPasskey(row);
  }

  /** Removes a passkey; the user's other sessions end (see `MfaService.factorRemoved`). */
  async remove(userId: string, id: string, client: Client, keepSessionId: string): Promise<void> {
    const name = await withTransaction(this.#db, async (trx, ctx) => {
      const removed = await passkeyRepo.deletePasskey(trx, userId, id);
      if (!removed) throw new HttpError(FactorCodes.PASSKEY_NOT_FOUND);
      await this.#events.publish(trx, userPasskeyRemoved, {
        data: { userId, passkeyId: id },
        subject: { type: 'user', id: userId },
        actorId: userId,
        ownerId: userId,
        requestId: client.requestId,
      });
      if (this.#mfa)
        await this.#mfa.factorRemoved(trx, ctx, {
          userId,
          factor: 'passkey',
          keepSessionId,
          client,
        });
      return removed.name;
    });
    this.#notices.notify(userId, { kind: 'passkey-removed', name });
  }

  /**
   * Options for `navigator.credentials.get`: a passwordless sign-in (no user known: discoverable
   * credentials), or the second factor of the sign-in whose `mfaToken` is given. An unknown
   * `mfaToken` gets options all the same (and a ceremony that can never pass).
   */
  async authenticationOptions(mfaToken: string | null): Promise<Ceremony> {
    let userId: string | null = null;
    let allow: passkeyRepo.PasskeyRow[] = [];
    const mfaTokenHash = mfaToken === null ? null : hashToken(mfaToken);
    if (mfaTokenHash !== null) {
      const challenge = await mfaRepo.liveChallengeUser(this.#db, mfaTokenHash);
      if (challenge) {
        userId = challenge.user_id;
        allow = await passkeyRepo.listPasskeys(this.#db, userId);
      }
    }
    const options = await generateAuthenticationOptions({
      rpID: this.#rp.rpId,
      userVerification: 'required',
      timeout: this.#rp.challengeTtlS * 1_000,
      ...(mfaTokenHash === null
        ? {}
        : {
            allowCredentials: allow.map((p) => ({
              id: p.credential_id,
              transports: p.transports as AuthenticatorTransport[],
            })),
          }),
    });
    const ceremonyId = newId();
    await passkeyRepo.insertCeremony(this.#db, {
      id: ceremonyId,
      purpose: mfaTokenHash === null ? 'sign-in' : 'second-factor',
      challenge: options.challenge,
      userId,
      mfaTokenHash,
      ttlS: this.#rp.challengeTtlS,
    });
    return { ceremonyId, options: { ...options } };
  }

  /**
   * Passwordless sign-in: a session exactly like a password sign-in's (amr `hwk` and `otp`: a
   * passkey with user verification is two factors). Every refusal is the same 401.
   */
  async signIn(
    input: { ceremonyId: string; response: AuthenticationResponseJSON },
    client: Client,
    identity: IdentityService,
  ): Promise<TokenPair> {
    const opened = await withTransaction(this.#db, async (trx) => {
      const ceremony = await passkeyRepo.spendCeremony(trx, input.ceremonyId, 'sign-in');
      if (!ceremony) return null;
      const passkey = await passkeyRepo.lockPasskeyByCredential(trx, input.response.id);
      if (!passkey) return null;
      const userId = passkey.user_id;
      const event = (outcome: repo.LoginEventRow['outcome']) => ({
        id: newId(),
        userId,
        outcome,
        ip: client.ip,
        userAgent: client.userAgent,
        sessionId: null,
      });
      const failure = async (reason: string, counted: boolean) => {
        if (counted) await repo.recordFailedLogin(trx, userId, this.#config.lockout);
        await repo.insertLoginEvent(trx, event(reason === 'locked' ? 'locked' : 'failure'));
        await this.#audit(trx, 'auth.login.failure', userId, client, { reason, method: 'passkey' });
        return null;
      };
      if (await mfaRepo.isLocked(trx, userId, { forUpdate: true })) return failure('locked', false);
      if (!(await this.#assert(trx, passkey, ceremony.challenge, input.response, userId)))
        return failure('passkey', true);
      return identity.openSession(trx, userId, { amr: ['hwk', 'otp'] }, client);
    });
    if (!opened) throw new HttpError(FactorCodes.PASSKEY_SIGN_IN_FAILED);
    return identity.tokenPair(opened satisfies OpenedSession);
  }

  /** The second factor of a sign-in (or a step-up when `mfaTokenHash` is null), in its transaction. */
  async verifySecondFactor(
    trx: Trx,
    userId: string,
    mfaTokenHash: string | null,
    assertion: { ceremonyId: string; response: unknown },
  ): Promise<boolean> {
    const response = assertion.response as AuthenticationResponseJSON;
    const ceremony = await passkeyRepo.spendCeremony(trx, assertion.ceremonyId, 'second-factor');
    if (!ceremony || ceremony.user_id !== userId || ceremony.mfa_token_hash !== mfaTokenHash)
      return false;
    if (typeof response.id !== 'string') return false;
    const passkey = await passkeyRepo.lockPasskeyByCredential(trx, response.id);
    if (!passkey || passkey.user_id !== userId) return false;
    return this.#assert(trx, passkey, ceremony.challenge, response, userId);
  }

  /** Verifies an assertion of this passkey and records its use; flags it on a counter gone back. */
  async #assert(
    trx: Trx,
    passkey: passkeyRepo.PasskeyRow,
    challenge: string,
    response: AuthenticationResponseJSON,
    userId: string,
  ): Promise<boolean> {
    if (passkey.flagged_at !== null) return false;
    const handle = response.response.userHandle;
    if (handle !== undefined && handle !== handleOf(userId)) return false;
    try {
      const verified = await verifyAuthenticationResponse({
        response,
        expectedChallenge: challenge,
        expectedOrigin: [...this.#rp.origins],
        expectedRPID: this.#rp.rpId,
        requireUserVerification: true,
        credential: {
          id: passkey.credential_id,
          publicKey: new Uint8Array(passkey.public_key),
          counter: Number(passkey.counter),
          transports: passkey.transports,
        },
      });
      if (!verified.verified) return false;
      await passkeyRepo.recordPasskeyUse(trx, passkey.id, verified.authenticationInfo.newCounter);
      return true;
    } catch (error) {
      const message = error instanceof Error ? error.message : '';
      if (/counter value/i.test(message)) {
        await passkeyRepo.flagPasskey(trx, passkey.id);
        await this.#audit(trx, 'auth.passkey.flagged', userId, null, { passkeyId: passkey.id });
        this.#log.warn({ userId, passkeyId: passkey.id }, 'passkey counter went back: flagged');
      }
      return false;
    }
  }

  #rejected(reason: string): HttpError {
    this.#log.info({ reason: reason.slice(0, 200) }, 'passkey registration refused');
    return new HttpError(FactorCodes.PASSKEY_REJECTED);
  }

  #audit(
    trx: Trx,
    action: string,
    userId: string,
    client: Client | null,
    data: Record<string, unknown>,
  ): Promise<void> {
    return recordAudit(trx, {
      action,
      actorId: userId,
      subjectType: 'user',
      subjectId: userId,
      ...auditClient(client),
      data,
    });
  }
}
