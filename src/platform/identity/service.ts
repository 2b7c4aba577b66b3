import type { Config } from '../config/index.ts';
import type { Transaction } from 'kysely';
import { isUniqueViolation, newId, withTransaction, type DB, type Db } from '../db/index.ts';
import { HttpError } from '../http/index.ts';
import { MailLimitedError, type Mailer } from '../mail/index.ts';
import type { Logger } from '../observability/index.ts';
import { IdentityCodes } from './errors.ts';
import type { KeyRing } from './keys.ts';
import {
  normalizeEmail,
  normalizeIdentifier,
  normalizePassword,
  normalizeUsername,
} from './normalize.ts';
import { passwordProblems, type PasswordHasher } from './passwords.ts';
import * as repo from './repository.ts';
import type { AuthMethod } from './tables.ts';
import { registerAttemptTemplate, verifyEmailTemplate } from './templates.ts';
import { hashToken, newOpaqueToken, type TokenBox } from './tokens.ts';

/** Where a request came from, for sessions and the sign-in history. */
export interface Client {
  ip: string | null;
  userAgent: string | null;
  requestId: string;
}

/** Who an access token speaks for, once verified and its session found live. */
export interface Authenticated extends repo.LiveSession {
  userId: string;
  sessionId: string;
}

/** What a successful sign-in or refresh returns. */
export interface TokenPair {
  accessToken: string;
  tokenType: 'Bearer';
  expiresIn: number;
  refreshToken: string;
  refreshExpiresIn: number;
  sessionId: string;
}

/** A session just opened, before its access token is signed. */
export interface OpenedSession {
  userId: string;
  sessionId: string;
  refreshToken: string;
  refreshExpires: Date;
}

export interface IdentityServiceOptions {
  db: Db;
  config: Config['identity'];
  hasher: PasswordHasher;
  keys: KeyRing;
  box: TokenBox;
  mail: Mailer | null;
  logger: Logger;
}

const secondsUntil = (date: Date) => Math.max(0, Math.floor((date.getTime() - Date.now()) / 1000));

/** Accounts, passwords, mailed tokens, sign-in, sessions and refresh-token rotation. */
export class IdentityService {
  readonly #db: Db;
  readonly #config: Config['identity'];
  readonly #hasher: PasswordHasher;
  readonly #keys: KeyRing;
  readonly #box: TokenBox;
  readonly #mail: Mailer | null;
  readonly #log: Logger;

  constructor(options: IdentityServiceOptions) {
    this.#db = options.db;
    this.#config = options.config;
    this.#hasher = options.hasher;
    this.#keys = options.keys;
    this.#box = options.box;
    this.#mail = options.mail;
    this.#log = options.logger;
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
    const problems = passwordProblems(password, this.#config.password, [username, email]);
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
          await this.#sendVerification(trx, { id, email, username }, client);
        } else {
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
    trx: Parameters<Parameters<typeof withTransaction>[1]>[0],
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
  async verifyEmail(token: string): Promise<void> {
    await withTransaction(this.#db, async (trx) => {
      const used = await repo.consumeUserToken(trx, 'verify-email', hashToken(token));
      if (!used) throw new HttpError(IdentityCodes.INVALID_EMAIL_TOKEN);
      await repo.markEmailVerified(trx, used.user_id, used.email);
    });
  }

  /** A new verification mail for an unverified account; silently nothing otherwise. */
  async resendVerification(rawEmail: string, client: Client): Promise<void> {
    const email = normalizeEmail(rawEmail);
    if (email === null) return;
    await withTransaction(this.#db, async (trx) => {
      const user = await repo.findUserByEmail(trx, email);
      if (!user || user.email_verified_at !== null) return;
      await this.#sendVerification(trx, user, client);
    });
  }

  /**
   * Signs in with an address or user name. Unknown account, wrong password, unverified address
   * and locked account all end in the same 401 after the same argon2 work.
   */
  async login(
    input: { login: string; password: string; rememberMe?: boolean },
    client: Client,
  ): Promise<TokenPair> {
    const login = normalizeIdentifier(input.login);
    const by = login.includes('@') ? { email: login } : { username: login };
    const user = await repo.findLoginCandidate(this.#db, by);
    const password = normalizePassword(input.password);
    const { ok, rehash } = await this.#hasher.verify(user?.password_hash ?? null, password);
    const refuse = () => new HttpError(IdentityCodes.INVALID_CREDENTIALS);
    if (!user) throw refuse();
    const event = (outcome: repo.LoginEventRow['outcome'], sessionId: string | null = null) => ({
      id: newId(),
      userId: user.id,
      outcome,
      ip: client.ip,
      userAgent: client.userAgent,
      sessionId,
    });
    if (user.locked) {
      await repo.insertLoginEvent(this.#db, event('locked'));
      throw refuse();
    }
    if (!ok) {
      const locked = await withTransaction(this.#db, async (trx) => {
        const nowLocked = await repo.recordFailedLogin(trx, user.id, this.#config.lockout);
        await repo.insertLoginEvent(trx, event('failure'));
        return nowLocked;
      });
      if (locked)
        this.#log.warn({ userId: user.id, ip: client.ip }, 'account locked after failed sign-ins');
      throw refuse();
    }
    if (this.#config.requireVerifiedEmail && user.email_verified_at === null) {
      await repo.insertLoginEvent(this.#db, event('unverified'));
      throw refuse();
    }
    const newHash = rehash ? await this.#hasher.hash(password) : null;
    const rememberMe = input.rememberMe === true;
    const sessionId = newId();
    const refreshToken = newOpaqueToken();
    const refreshExpires = await withTransaction(this.#db, async (trx) => {
      await repo.recordSuccessfulLogin(trx, user.id, newHash);
      await repo.insertSession(trx, {
        id: sessionId,
        userId: user.id,
        rememberMe,
        userAgent: client.userAgent,
        ip: client.ip,
        maxAgeS: this.#config.sessionMaxAgeS,
      });
      const expires = await repo.insertRefreshToken(trx, {
        tokenHash: hashToken(refreshToken),
        sessionId,
        ttlS: rememberMe ? this.#config.rememberMeTtlS : this.#config.refreshTokenTtlS,
      });
      await repo.insertLoginEvent(trx, event('success', sessionId));
      return expires;
    });
    return this.#pair(user.id, sessionId, refreshToken, refreshExpires);
  }

  /**
   * Opens a session for a user who proved who they are another way than the password (a
   * provider sign-in): the session with its `amr`, its first refresh token and a `success`
   * event, all in the caller's transaction. Sign the access token with `tokenPair` after commit.
   */
  async openSession(
    trx: Transaction<DB>,
    userId: string,
    options: { amr: AuthMethod[]; rememberMe?: boolean },
    client: Client,
  ): Promise<OpenedSession> {
    const rememberMe = options.rememberMe === true;
    const sessionId = newId();
    const refreshToken = newOpaqueToken();
    await repo.insertSession(trx, {
      id: sessionId,
      userId,
      rememberMe,
      userAgent: client.userAgent,
      ip: client.ip,
      maxAgeS: this.#config.sessionMaxAgeS,
      amr: options.amr,
    });
    const refreshExpires = await repo.insertRefreshToken(trx, {
      tokenHash: hashToken(refreshToken),
      sessionId,
      ttlS: rememberMe ? this.#config.rememberMeTtlS : this.#config.refreshTokenTtlS,
    });
    await repo.insertLoginEvent(trx, {
      id: newId(),
      userId,
      outcome: 'success',
      ip: client.ip,
      userAgent: client.userAgent,
      sessionId,
    });
    return { userId, sessionId, refreshToken, refreshExpires };
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
    const outcome = await withTransaction(this.#db, async (trx) => {
      const row = await repo.lockRefreshToken(trx, tokenHash);
      if (!row || !row.session_live) return { kind: 'invalid' as const };
      if (row.spent_seconds_ago === null) {
        if (row.expired) return { kind: 'invalid' as const };
        const next = newOpaqueToken();
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
      await repo.revokeSessions(
        trx,
        { userId: row.user_id, sessionId: row.session_id },
        'refresh-reuse',
      );
      await repo.insertLoginEvent(trx, {
        id: newId(),
        userId: row.user_id,
        outcome: 'refresh-reuse',
        ip: client.ip,
        userAgent: client.userAgent,
        sessionId: row.session_id,
      });
      return { kind: 'reused' as const, row };
    });
    if (outcome.kind === 'reused') {
      this.#log.warn(
        { userId: outcome.row.user_id, sessionId: outcome.row.session_id, ip: client.ip },
        'spent refresh token reused: session revoked',
      );
    }
    if (outcome.kind !== 'rotated') throw new HttpError(IdentityCodes.INVALID_REFRESH_TOKEN);
    return this.#pair(outcome.row.user_id, outcome.row.session_id, outcome.token, outcome.expires);
  }

  /** Ends sessions of the user: one (`sessionId`), or all. Returns how many were live. */
  async logout(userId: string, sessionId: string | undefined, reason: string): Promise<number> {
    const ids = await repo.revokeSessions(this.#db, { userId, sessionId }, reason);
    return ids.length;
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
   * session is live; null for any other token. Database failures throw (a 503, not a 401).
   */
  async authenticate(token: string): Promise<Authenticated | null> {
    let claims;
    try {
      claims = await this.#keys.verify(token);
    } catch {
      return null;
    }
    const live = await repo.liveSession(this.#db, claims.sid, claims.sub);
    return live === undefined ? null : { userId: claims.sub, sessionId: claims.sid, ...live };
  }
}
