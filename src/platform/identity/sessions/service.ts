import { recordAudit, auditClient } from '../../audit/index.ts';
import type { Transaction } from 'kysely';
import { isUniqueViolation, newId, withTransaction, type Db } from '../../db/index.ts';
import { mirrorEventWrite } from '../../events/index.ts';
import { HttpError } from '../../http/index.ts';
import { MailLimitedError, type Mailer } from '../../mail/index.ts';
import type { Logger } from '../../observability/index.ts';
import { AccountMail } from '../accounts/mail.ts';
import { describeDevice, isNewDevice } from './device.ts';
import { IdentityCodes } from '../errors.ts';
import { MalformedTokenError, type KeyRing } from '../keys.ts';
import type { MfaService } from '../mfa/service.ts';
import {
  normalizeEmail,
  normalizeIdentifier,
  normalizePassword,
  normalizeUsername,
} from '../normalize.ts';
import { passwordProblems, type PasswordHasher } from '../passwords.ts';
import { assignDefaultRole } from '../rbac/repository.ts';
import * as repo from '../repository.ts';
import type {
  Authenticated,
  AuthenticationResult,
  Client,
  MfaChallenge,
  OpenedSession,
  SecondFactor,
  TokenPair,
} from '../schemas.ts';
import type { AuthMethod } from '../tables.ts';
import { SessionCache } from './session-cache.ts';
import { recentSignInAgents, refreshTokenSession } from './repository.ts';
import { newSignInTemplate, registerAttemptTemplate, verifyEmailTemplate } from './templates.ts';
import { hashToken, newOpaqueToken, type TokenBox } from '../tokens.ts';
import {
  outboxPublisher,
  publishSessionsRevoked,
  userEmailVerified,
  userRegistered,
  type EventPublisher,
} from '../events.ts';
import { identityDb, type IdentityDb, type IdentityTables } from '../db.ts';
import type { IdentitySettings } from '../config.ts';

function authenticated(
  claims: { sub: string; sid: string },
  live: repo.LiveSession | undefined,
): Authenticated | null {
  return live === undefined ? null : { userId: claims.sub, sessionId: claims.sid, ...live };
}

export interface IdentityServiceOptions {
  db: Db;
  config: IdentitySettings;
  hasher: PasswordHasher;
  keys: KeyRing;
  box: TokenBox;
  mail: Mailer | null;
  logger: Logger;
  /** The second factor; without it sign-in is by password alone. */
  mfa?: MfaService | null;
  /** The session-check cache; none: every check reads the database. */
  sessionCache?: SessionCache;
  /** Domain events (`platform.events`); none: written to the outbox without metrics. */
  events?: EventPublisher | null;
}

/** The audit action of each session revocation reason given to `logout`. */
const REVOKE_ACTIONS: Record<string, string> = {
  logout: 'auth.logout',
  'logout-all': 'auth.logout-all',
  revoked: 'auth.session.revoke',
};

/** A login is an address when it contains `@`, a user name otherwise. */
const loginBy = (login: string) => (login.includes('@') ? { email: login } : { username: login });

const secondsUntil = (date: Date) => Math.max(0, Math.floor((date.getTime() - Date.now()) / 1000));

/** Accounts, passwords, mailed tokens, sign-in, sessions and refresh-token rotation. */
export class IdentityService {
  readonly #db: IdentityDb;
  readonly #config: IdentitySettings;
  readonly #hasher: PasswordHasher;
  readonly #keys: KeyRing;
  readonly #box: TokenBox;
  readonly #mail: Mailer | null;
  readonly #log: Logger;
  readonly #mfa: MfaService | null;
  readonly #sessions: SessionCache;
  readonly #later: AccountMail;
  readonly #events: EventPublisher;

  constructor(options: IdentityServiceOptions) {
    this.#events = options.events ?? outboxPublisher;
    this.#db = identityDb(options.db);
    this.#config = options.config;
    this.#hasher = options.hasher;
    this.#keys = options.keys;
    this.#box = options.box;
    this.#mail = options.mail;
    this.#log = options.logger;
    this.#mfa = options.mfa ?? null;
    this.#later = new AccountMail(options.mail, options.logger);
    this.#sessions =
      options.sessionCache ?? new SessionCache({ cache: null, ttlS: 1, logger: options.logger });
  }

  /** The session-check cache (for the flows that must invalidate it). */
  get sessionCache(): SessionCache {
    return this.#sessions;
  }

  /**
   * Drops the cached session checks of a user: all of them, or those sessions. Call it after the
   * transaction that revoked sessions, locked, reset or deleted the account, or changed anything
   * the check returns (tier, `authenticated_at`, `amr`), so the next request reads the database.
   */
  async invalidateSessions(userId: string, sessionIds?: readonly string[]): Promise<void> {
    if (sessionIds === undefined) await this.#sessions.invalidateUser(userId);
    else await this.#sessions.invalidateSession(userId, ...sessionIds);
  }

  #mailer(): Mailer {
    if (!this.#mail) throw new Error('the identity area needs the mailer');
    return this.#mail;
  }

  /**
   * Creates an unverified account and mails its verification link. A taken address gets a
   * "someone tried to register" mail instead and the caller sees the same answer; a taken user
   * name (public anyway) is a 409.
   */
  async register(
    input: { email: string; username: string; password: string },
    client: Client,
  ): Promise<void> {
    const email = normalizeEmail(input.email);
    if (email === null)
      throw new HttpError(IdentityCodes.INVALID_EMAIL, {
        errors: [{ path: '/body/email', message: 'must be one plain ASCII email address' }],
      });
    const username = normalizeUsername(input.username);
    if (username === null)
      throw new HttpError(IdentityCodes.INVALID_USERNAME, {
        errors: [
          { path: '/body/username', message: 'must be 3 to 32 of a-z 0-9 _ . - and not reserved' },
        ],
      });
    const password = normalizePassword(input.password);
    const problems = await passwordProblems(password, this.#config.password, [username, email]);
    if (problems.length > 0) throw new HttpError(IdentityCodes.WEAK_PASSWORD, { errors: problems });
    if (await repo.usernameExists(this.#db, username))
      throw new HttpError(IdentityCodes.USERNAME_TAKEN);
    // Hashed whether or not the address is taken: both answers take the same time.
    const passwordHash = await this.#hasher.hash(password);
    const mail = this.#mailer();
    try {
      await withTransaction(this.#db, async (trx) => {
        const id = newId();
        const created = await repo.insertUser(trx, { id, email, username, passwordHash });
        if (created) {
          await assignDefaultRole(trx, id);
          await recordAudit(trx, {
            action: 'user.register',
            actorId: id,
            subjectType: 'user',
            subjectId: id,
            ...auditClient(client),
          });
          await this.#events.publish(trx, userRegistered, {
            data: { userId: id, username, method: 'password', emailVerified: false },
            subject: { type: 'user', id },
            actorId: id,
            ownerId: id,
            requestId: client.requestId,
          });
          await this.#sendVerification(trx, { id, email, username }, client);
        } else {
          // What a new address does next (role, audit, event, token, mail), here for no new row.
          await repo.mirrorDefaultRole(trx);
          await recordAudit(trx, {
            action: 'user.register.taken',
            ...auditClient(client),
          });
          await mirrorEventWrite(trx);
          await repo.mirrorUserToken(trx, {
            id: newId(),
            tokenHash: hashToken(newOpaqueToken()),
            email,
            ttlS: this.#config.emailTokenTtlS,
          });
          await this.#quietly(() =>
            mail.send(
              {
                template: registerAttemptTemplate,
                to: email,
                vars: {},
                requestId: client.requestId,
              },
              { trx },
            ),
          );
        }
      });
    } catch (error) {
      if (isUniqueViolation(error, 'gw_user_username_uq'))
        throw new HttpError(IdentityCodes.USERNAME_TAKEN, { cause: error });
      throw error;
    }
  }

  /** Sends mail, except past a send limit, which must look like a send (no enumeration). */
  async #quietly(send: () => Promise<unknown>): Promise<void> {
    try {
      await send();
    } catch (error) {
      if (!(error instanceof MailLimitedError)) throw error;
      this.#log.info({ limit: error.limit }, 'identity mail not sent: send limit reached');
    }
  }

  async #sendVerification(
    trx: IdentityDb,
    user: { id: string; email: string; username: string },
    client: Client,
  ): Promise<void> {
    const token = newOpaqueToken();
    await repo.insertUserToken(trx, {
      id: newId(),
      userId: user.id,
      purpose: 'verify-email',
      tokenHash: hashToken(token),
      email: user.email,
      ttlS: this.#config.emailTokenTtlS,
    });
    await this.#quietly(() =>
      this.#mailer().send(
        {
          template: verifyEmailTemplate,
          to: user.email,
          vars: {
            username: user.username,
            token,
            hours: Math.max(1, Math.round(this.#config.emailTokenTtlS / 3_600)),
          },
          userId: user.id,
          requestId: client.requestId,
        },
        { trx },
      ),
    );
  }

  /** Spends a verification token and marks the address it was sent to as verified. */
  async verifyEmail(token: string, requestId: string | null = null): Promise<void> {
    await withTransaction(this.#db, async (trx) => {
      const used = await repo.consumeUserToken(trx, 'verify-email', hashToken(token));
      if (!used) throw new HttpError(IdentityCodes.INVALID_EMAIL_TOKEN);
      if (await repo.markEmailVerified(trx, used.user_id, used.email))
        await this.#events.publish(trx, userEmailVerified, {
          data: { userId: used.user_id, via: 'link' },
          subject: { type: 'user', id: used.user_id },
          actorId: used.user_id,
          ownerId: used.user_id,
          requestId,
        });
    });
  }

  /**
   * A new verification mail for an unverified account; silently nothing otherwise. The look-up
   * and the mail run once the answer is on its way, so the answer takes the same time either way.
   */
  resendVerification(rawEmail: string, client: Client): void {
    const email = normalizeEmail(rawEmail);
    if (email === null) return;
    this.#later.later('verification mail', () =>
      withTransaction(this.#db, async (trx) => {
        const user = await repo.findUserByEmail(trx, email);
        if (!user || user.email_verified_at !== null) return;
        await this.#sendVerification(trx, user, client);
      }),
    );
  }

  /** Waits for the mail work still running after its answer (at shutdown, and in tests). */
  drain(): Promise<void> {
    return this.#later.drain();
  }

  /**
   * What the per-account sign-in limit keys on: the account a login names (address or user name,
   * however typed: spaces, case, full-width forms), or for an unknown one its normalised form, so
   * every spelling of one account shares one bucket. The same query whether or not it exists.
   */
  async loginLimitKey(rawLogin: string): Promise<string> {
    const login = normalizeIdentifier(rawLogin);
    const id = await repo.findLoginAccountId(this.#db, loginBy(login));
    return id === undefined ? `login:${login}` : `user:${id}`;
  }

  /**
   * Signs in with an address or user name. Unknown account, wrong password, unverified address
   * and locked account all end in the same 401 after the same argon2 work and a write of the same
   * size. An account with a second factor gets a challenge (`mfaToken`) instead of tokens.
   *
   * The account row is locked (`FOR UPDATE`) from the look-up to the commit, argon2 included:
   * concurrent guesses at one account are decided one at a time, each seeing the failures and
   * the lock recorded before it, so at most the lockout threshold is ever evaluated and a right
   * password never signs in once the account is locked.
   */
  async login(
    input: { login: string; password: string; rememberMe?: boolean },
    client: Client,
  ): Promise<TokenPair | MfaChallenge> {
    const login = normalizeIdentifier(input.login);
    const password = normalizePassword(input.password);
    const rememberMe = input.rememberMe === true;
    const outcome = await withTransaction(this.#db, (trx) =>
      this.#decideLogin(trx, login, password, rememberMe, client),
    );
    if (outcome.kind === 'refused') {
      if (outcome.lockedNow)
        this.#log.warn(
          { userId: outcome.userId, ip: client.ip },
          'account locked after failed sign-ins',
        );
      throw new HttpError(IdentityCodes.INVALID_CREDENTIALS);
    }
    if (outcome.kind === 'challenge') return outcome.challenge;
    const { userId, session } = outcome;
    return this.#pair(userId, session.sessionId, session.refreshToken, session.expires);
  }

  async #decideLogin(
    trx: Transaction<IdentityTables>,
    login: string,
    password: string,
    rememberMe: boolean,
    client: Client,
  ): Promise<
    | { kind: 'refused'; userId: string | null; lockedNow: boolean }
    | { kind: 'challenge'; challenge: MfaChallenge }
    | {
        kind: 'session';
        userId: string;
        session: { sessionId: string; refreshToken: string; expires: Date };
      }
  > {
    const user = await repo.findLoginCandidate(trx, loginBy(login), { forUpdate: true });
    const { ok, rehash } = await this.#hasher.verify(user?.password_hash ?? null, password);
    const audit = (userId: string | null, action: string, data: Record<string, unknown> = {}) => ({
      action,
      actorId: userId,
      subjectType: userId === null ? null : 'user',
      subjectId: userId,
      ...auditClient(client),
      data,
    });
    if (!user) {
      // The same three writes as a wrong password (the counter's update finds no row), so an
      // unknown account answers in the same time as a known one.
      await repo.recordFailedLogin(trx, repo.NO_ACCOUNT, this.#config.lockout);
      await repo.recordUnknownLogin(trx, {
        id: newId(),
        ip: client.ip,
        userAgent: client.userAgent,
      });
      await recordAudit(trx, audit(null, 'auth.login.failure', { reason: 'unknown-account' }));
      return { kind: 'refused', userId: null, lockedNow: false };
    }
    const event = (outcome: repo.LoginEventRow['outcome'], sessionId: string | null = null) => ({
      id: newId(),
      userId: user.id,
      outcome,
      ip: client.ip,
      userAgent: client.userAgent,
      sessionId,
    });
    if (user.locked || !ok) {
      // Not counted while locked (the update finds no unlocked row), but the same statements.
      const lockedNow = await repo.recordFailedLogin(trx, user.id, this.#config.lockout);
      const reason = user.locked ? 'locked' : 'password';
      await repo.insertLoginEvent(trx, event(user.locked ? 'locked' : 'failure'));
      await recordAudit(trx, audit(user.id, 'auth.login.failure', { reason }));
      if (lockedNow) await recordAudit(trx, audit(user.id, 'auth.lockout'));
      return { kind: 'refused', userId: user.id, lockedNow };
    }
    if (this.#config.requireVerifiedEmail && user.email_verified_at === null) {
      await repo.insertLoginEvent(trx, event('unverified'));
      await recordAudit(trx, audit(user.id, 'auth.login.failure', { reason: 'unverified' }));
      return { kind: 'refused', userId: user.id, lockedNow: false };
    }
    const newHash = rehash ? await this.#hasher.hash(password) : null;
    const challenge = await this.#mfa?.challenge(user.id, { rememberMe, newHash }, client, trx);
    if (challenge) return { kind: 'challenge', challenge };
    const session = await this.#openSession(
      trx,
      user,
      { rememberMe, newHash, amr: ['pwd'] },
      client,
    );
    return { kind: 'session', userId: user.id, session };
  }

  /**
   * The second step of a sign-in: the `mfaToken` from `login` with a TOTP code or a backup
   * code. Wrong factors count towards the lockout; every refusal is one 401 `INVALID_MFA`.
   */
  async verifyMfa(mfaToken: string, factor: SecondFactor, client: Client): Promise<TokenPair> {
    if (!this.#mfa) throw new HttpError(IdentityCodes.INVALID_MFA);
    const { userId, session } = await this.#mfa.redeem(
      mfaToken,
      factor,
      client,
      async (trx, who) => ({
        userId: who.userId,
        session: await this.#openSession(
          trx,
          { id: who.userId },
          { rememberMe: who.rememberMe, newHash: null, amr: who.amr },
          client,
        ),
      }),
    );
    return this.#pair(userId, session.sessionId, session.refreshToken, session.expires);
  }

  /**
   * The session of a sign-in that succeeded (password, second factor), with its first refresh
   * token, in the caller's transaction: the failure counters are cleared, the sign-in is
   * recorded and audited, and a device not seen in the user's recent sign-ins gets a mail.
   */
  async #openSession(
    trx: IdentityDb,
    user: { id: string; email?: string; username?: string },
    options: { rememberMe: boolean; newHash: string | null; amr: AuthMethod[] },
    client: Client,
  ): Promise<{ sessionId: string; refreshToken: string; expires: Date }> {
    const { rememberMe } = options;
    const sessionId = newId();
    const refreshToken = newOpaqueToken();
    const seen = await recentSignInAgents(trx, user.id);
    await repo.recordSuccessfulLogin(trx, user.id, options.newHash);
    await repo.insertSession(trx, {
      id: sessionId,
      userId: user.id,
      rememberMe,
      userAgent: client.userAgent,
      ip: client.ip,
      maxAgeS: this.#config.sessionMaxAgeS,
      amr: options.amr,
    });
    const expires = await repo.insertRefreshToken(trx, {
      tokenHash: hashToken(refreshToken),
      sessionId,
      ttlS: rememberMe ? this.#config.rememberMeTtlS : this.#config.refreshTokenTtlS,
    });
    await repo.insertLoginEvent(trx, {
      id: newId(),
      userId: user.id,
      outcome: 'success',
      ip: client.ip,
      userAgent: client.userAgent,
      sessionId,
    });
    await recordAudit(trx, {
      action: 'auth.login.success',
      actorId: user.id,
      subjectType: 'user',
      subjectId: user.id,
      ...auditClient(client),
      data: { sessionId, amr: options.amr },
    });
    // The first sign-in (after registration) has nothing to compare with: no mail.
    if (seen.any && isNewDevice(client.userAgent, seen.agents)) {
      const to =
        user.email !== undefined && user.username !== undefined
          ? { email: user.email, username: user.username }
          : await repo.findUserContact(trx, user.id);
      if (to)
        await this.#quietly(() =>
          this.#mailer().send(
            {
              template: newSignInTemplate,
              to: to.email,
              vars: {
                username: to.username,
                device: describeDevice(client.userAgent),
                ip: client.ip ?? 'unknown',
                at: `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
              },
              userId: user.id,
              requestId: client.requestId,
            },
            { trx },
          ),
        );
    }
    return { sessionId, refreshToken, expires };
  }

  /**
   * Opens a session for a user who proved who they are another way than the password (a
   * provider sign-in), in the caller's transaction, the same way as a password sign-in: the
   * session with its `amr`, its first refresh token, the sign-in recorded and audited, the
   * new-device mail. Sign the access token with `tokenPair` after commit.
   */
  async openSession(
    trx: Transaction<IdentityTables>,
    userId: string,
    options: { amr: AuthMethod[]; rememberMe?: boolean },
    client: Client,
  ): Promise<OpenedSession> {
    const opened = await this.#openSession(
      trx,
      { id: userId },
      { rememberMe: options.rememberMe === true, newHash: null, amr: options.amr },
      client,
    );
    return {
      userId,
      sessionId: opened.sessionId,
      refreshToken: opened.refreshToken,
      refreshExpires: opened.expires,
    };
  }

  /** The token pair of a session opened by `openSession`. */
  tokenPair(opened: OpenedSession): Promise<TokenPair> {
    return this.#pair(opened.userId, opened.sessionId, opened.refreshToken, opened.refreshExpires);
  }

  async #pair(
    userId: string,
    sessionId: string,
    refreshToken: string,
    refreshExpires: Date,
  ): Promise<TokenPair> {
    return {
      accessToken: await this.#keys.sign({ sub: userId, sid: sessionId }),
      tokenType: 'Bearer',
      expiresIn: this.#config.accessTokenTtlS,
      refreshToken,
      refreshExpiresIn: secondsUntil(refreshExpires),
      sessionId,
    };
  }

  /**
   * Rotates a refresh token. A spent one presented again within the grace window gets the
   * current pair (two tabs refreshing at once); later, it revokes the whole session (a stolen
   * token was used by two parties).
   */
  async refresh(refreshToken: string, client: Client): Promise<TokenPair> {
    const tokenHash = hashToken(refreshToken);
    // The common case, a live unspent token, in one statement; everything else (and the loser of
    // two concurrent rotations of one token) takes the locking transaction below.
    const next = newOpaqueToken();
    const rotated = await repo.rotateRefreshToken(this.#db, {
      tokenHash,
      sealedSuccessor: this.#box.seal(next),
      successorHash: hashToken(next),
      ttlS: this.#config.refreshTokenTtlS,
      rememberMeTtlS: this.#config.rememberMeTtlS,
      ip: client.ip,
      userAgent: client.userAgent,
    });
    if (rotated !== undefined)
      return this.#pair(rotated.user_id, rotated.session_id, next, rotated.expires_at);
    const outcome = await withTransaction(this.#db, async (trx) => {
      const row = await repo.lockRefreshToken(trx, tokenHash);
      if (!row || !row.session_live) return { kind: 'invalid' as const };
      if (row.spent_seconds_ago === null) {
        // Not expected after the statement above; kept so this locking path is complete alone.
        if (row.expired) return { kind: 'invalid' as const };
        await repo.spendRefreshToken(trx, tokenHash, this.#box.seal(next));
        const expires = await repo.insertRefreshToken(trx, {
          tokenHash: hashToken(next),
          sessionId: row.session_id,
          ttlS: row.remember_me ? this.#config.rememberMeTtlS : this.#config.refreshTokenTtlS,
        });
        await repo.touchSession(trx, row.session_id, {
          ip: client.ip,
          userAgent: client.userAgent,
        });
        return { kind: 'rotated' as const, row, token: next, expires };
      }
      if (row.spent_seconds_ago <= this.#config.refreshReuseGraceS) {
        const successor = row.successor === null ? null : this.#box.open(row.successor);
        const expires =
          successor === null
            ? undefined
            : await repo.currentRefreshToken(trx, row.session_id, hashToken(successor));
        if (successor === null || expires === undefined) return { kind: 'invalid' as const };
        return { kind: 'rotated' as const, row, token: successor, expires };
      }
      const reused = await repo.revokeSessions(
        trx,
        { userId: row.user_id, sessionId: row.session_id },
        'refresh-reuse',
      );
      await publishSessionsRevoked(this.#events, trx, {
        userId: row.user_id,
        sessionIds: reused,
        reason: 'refresh-reuse',
        actorId: null,
        requestId: client.requestId,
      });
      await repo.insertLoginEvent(trx, {
        id: newId(),
        userId: row.user_id,
        outcome: 'refresh-reuse',
        ip: client.ip,
        userAgent: client.userAgent,
        sessionId: row.session_id,
      });
      await recordAudit(trx, {
        action: 'auth.refresh.reuse',
        actorId: row.user_id,
        subjectType: 'session',
        subjectId: row.session_id,
        ...auditClient(client),
        data: { spentSecondsAgo: Math.round(row.spent_seconds_ago) },
      });
      return { kind: 'reused' as const, row };
    });
    if (outcome.kind === 'reused') {
      await this.#sessions.invalidateSession(outcome.row.user_id, outcome.row.session_id);
      this.#log.warn(
        { userId: outcome.row.user_id, sessionId: outcome.row.session_id, ip: client.ip },
        'spent refresh token reused: session revoked',
      );
    }
    if (outcome.kind !== 'rotated') throw new HttpError(IdentityCodes.INVALID_REFRESH_TOKEN);
    return this.#pair(outcome.row.user_id, outcome.row.session_id, outcome.token, outcome.expires);
  }

  /**
   * Ends sessions of the user: one (`sessionId`), or all, audited (`auth.logout`,
   * `auth.logout-all`, `auth.session.revoke` by reason) in the same transaction, and dropped from
   * the session-check cache once committed. Returns how many were live.
   */
  async logout(
    userId: string,
    sessionId: string | undefined,
    reason: string,
    client?: Client,
  ): Promise<number> {
    const ids = await withTransaction(this.#db, async (trx) => {
      const revoked = await repo.revokeSessions(trx, { userId, sessionId }, reason);
      await publishSessionsRevoked(this.#events, trx, {
        userId,
        sessionIds: revoked,
        reason,
        requestId: client?.requestId ?? null,
      });
      if (revoked.length > 0)
        await recordAudit(trx, {
          action: REVOKE_ACTIONS[reason] ?? 'auth.session.revoke',
          actorId: userId,
          subjectType: sessionId === undefined ? 'user' : 'session',
          subjectId: sessionId ?? userId,
          ...auditClient(client),
          data: { reason, sessions: revoked.length },
        });
      return revoked;
    });
    if (sessionId === undefined) await this.#sessions.invalidateUser(userId);
    else await this.#sessions.invalidateSession(userId, ...ids);
    return ids.length;
  }

  /**
   * Ends the session of a live refresh token (cookie-mode sign-out), audited as `auth.logout`.
   * False when the token is not live (unknown, spent, expired, or its session already ended).
   */
  async logoutByRefreshToken(refreshToken: string, client: Client): Promise<boolean> {
    const found = await refreshTokenSession(this.#db, hashToken(refreshToken));
    if (!found) return false;
    return (await this.logout(found.userId, found.sessionId, 'logout', client)) > 0;
  }

  /** The user's live sessions, most recently used first. */
  sessions(userId: string): Promise<repo.SessionRow[]> {
    return repo.listLiveSessions(this.#db, userId);
  }

  /** The user's latest sign-in events. */
  loginHistory(userId: string, limit: number): Promise<repo.LoginEventRow[]> {
    return repo.listLoginEvents(this.#db, userId, limit);
  }

  /**
   * The user, session and its authentication facts for an access token that verifies and whose
   * session is live; null for any other token, `'malformed'` for one that is not even a JWS.
   * Answered at once (no promise) when the token was verified before and the session check is
   * cached in process. Database failures throw (a 503, not a 401).
   */
  authenticate(token: string): AuthenticationResult | Promise<AuthenticationResult> {
    const claims = this.#keys.verified(token);
    if (claims === undefined) return this.#authenticateAnew(token);
    const live = this.#sessions.live(this.#db, claims.sid, claims.sub);
    return live instanceof Promise
      ? live.then((session) => authenticated(claims, session))
      : authenticated(claims, live);
  }

  async #authenticateAnew(token: string): Promise<AuthenticationResult> {
    let claims;
    try {
      claims = await this.#keys.verify(token);
    } catch (error) {
      return error instanceof MalformedTokenError ? 'malformed' : null;
    }
    return authenticated(claims, await this.#sessions.live(this.#db, claims.sid, claims.sub));
  }
}
