import { randomInt } from 'node:crypto';
import { randomNonce, randomPKCECodeVerifier, randomState } from 'openid-client';
import { recordAudit, type AuditEvent, auditClient } from '../../audit/index.ts';
import type { OidcProviderConfig } from './providers-config.ts';
import { isUniqueViolation, newId, withTransaction, type Db } from '../../db/index.ts';
import { HttpError } from '../../http/index.ts';
import type { Logger } from '../../observability/index.ts';
import { IdentityCodes } from '../errors.ts';
import { normalizeEmail, normalizeUsername } from '../normalize.ts';
import { ProviderLoginError, ProviderUnavailableError, type OidcProviders } from './client.ts';
import * as repo from './repository.ts';
import { insertUser, liveSession, revokeSessions } from '../repository.ts';
import type { Client, TokenPair } from '../schemas.ts';
import type { IdentityService } from '../sessions/service.ts';
import { hashToken, type TokenBox } from '../tokens.ts';
import { identityDb, type IdentityDb } from '../db.ts';
import { userProviderLinked, userProviderUnlinked } from '../recovery/events.ts';
import { silentNotices, type SecurityNotices } from '../security-notices.ts';
import {
  outboxPublisher,
  publishSessionsRevoked,
  userRegistered,
  type EventPublisher,
} from '../events.ts';

/** How long an authorization request may take, from `authorize` to its callback. */
export const OIDC_STATE_TTL_S = 600;

/** The callback's query, as the provider sent it (validated by the route schema). */
export type CallbackQuery = Readonly<Record<string, string | undefined>>;

/** A linked identity, as listed to its owner. */
export interface LinkedIdentity {
  id: string;
  provider: string;
  email: string | null;
  linkedAt: Date;
}

export interface OidcServiceOptions {
  db: Db;
  identity: IdentityService;
  providers: OidcProviders;
  box: TokenBox;
  logger: Logger;
  /** Domain events (`platform.events`); none: written to the outbox without metrics. */
  events?: EventPublisher | null;
  /** Mail to the owner about security changes (`SecurityMail`); none: silent. */
  notices?: SecurityNotices | null;
}

/**
 * User names to try for a new provider account, best first: the first hint that can be made to
 * fit our rules (`a-z 0-9 _ . -`, 3 to 32, not reserved), then the same with a random numeric
 * suffix. Callers pass the provider's preferred name before the address's local part, which is
 * used only when there is no such name (a user name is public). Pure: `random` gives suffixes.
 */
export function usernameCandidates(
  hints: readonly (string | null)[],
  random: () => string = () => String(randomInt(1_000, 100_000)),
): string[] {
  let base = 'member';
  for (const hint of hints) {
    if (hint === null) continue;
    const cleaned = hint
      .normalize('NFKC')
      .toLowerCase()
      .replace(/[^a-z0-9_.-]+/g, '_')
      .replace(/^[._-]+|[._-]+$/g, '')
      .slice(0, 24);
    if (cleaned.length === 0) continue;
    base = cleaned.length < 3 ? `${cleaned}_user` : cleaned;
    break;
  }
  const out: string[] = [];
  const plain = normalizeUsername(base);
  if (plain !== null) out.push(plain);
  for (let i = 0; out.length < 6 && i < 20; i += 1) {
    const suffixed = normalizeUsername(`${base}_${random()}`);
    if (suffixed !== null && !out.includes(suffixed)) out.push(suffixed);
  }
  return out;
}

/**
 * Sign-in and account linking through OpenID Connect providers and GitHub: the authorization
 * request (state, nonce and PKCE verifier kept server side, single use, 10 minutes), the
 * callback (sign in, link, or create the account), and the user's linked identities.
 */
export class OidcService {
  readonly #db: IdentityDb;
  readonly #identity: IdentityService;
  readonly #providers: OidcProviders;
  readonly #box: TokenBox;
  readonly #log: Logger;
  readonly #events: EventPublisher;
  readonly #notices: SecurityNotices;

  constructor(options: OidcServiceOptions) {
    this.#notices = options.notices ?? silentNotices;
    this.#db = identityDb(options.db);
    this.#identity = options.identity;
    this.#providers = options.providers;
    this.#box = options.box;
    this.#log = options.logger;
    this.#events = options.events ?? outboxPublisher;
  }

  #provider(id: string): OidcProviderConfig {
    const provider = this.#providers.get(id);
    if (!provider) throw new HttpError(IdentityCodes.OIDC_PROVIDER_NOT_FOUND);
    return provider;
  }

  /**
   * Starts a flow: stores its state (hashed), nonce and sealed PKCE verifier, and returns the
   * provider URL. With `link` (a signed-in caller) the callback links to that account, provided
   * the session that asked is still live then.
   */
  async authorize(
    providerId: string,
    link: { userId: string; sessionId: string } | null,
  ): Promise<URL> {
    const provider = this.#provider(providerId);
    const secrets = {
      state: randomState(),
      nonce: randomNonce(),
      codeVerifier: randomPKCECodeVerifier(),
    };
    let url: URL;
    try {
      url = await this.#providers.authorizationUrl(provider, secrets);
    } catch (error) {
      if (!(error instanceof ProviderUnavailableError)) throw error;
      this.#log.warn({ provider: providerId, err: error.cause }, 'sign-in provider unavailable');
      throw new HttpError(IdentityCodes.OIDC_PROVIDER_UNAVAILABLE, { cause: error });
    }
    await repo.insertOidcState(this.#db, {
      stateHash: hashToken(secrets.state),
      provider: providerId,
      nonce: secrets.nonce,
      sealedVerifier: this.#box.seal(secrets.codeVerifier),
      link,
      ttlS: OIDC_STATE_TTL_S,
    });
    return url;
  }

  /**
   * Completes a flow. The state is spent first (so a replay fails whatever happens next); then
   * the provider's answer is checked and exchanged; then, in one transaction: a linked identity
   * signs in, a linking flow links, a verified address of an existing account links and signs
   * in, anything else with a verified address creates an account. Every failure is one 400.
   */
  async callback(providerId: string, query: CallbackQuery, client: Client): Promise<TokenPair> {
    const provider = this.#provider(providerId);
    const fail = (reason: string, cause?: unknown) => {
      this.#log.warn(
        { provider: providerId, reason, err: cause, requestId: client.requestId },
        'provider sign-in failed',
      );
      return new HttpError(IdentityCodes.OIDC_LOGIN_FAILED);
    };
    const state = query.state;
    if (state === undefined || state === '') throw fail('no state');
    const flow = await repo.consumeOidcState(this.#db, providerId, hashToken(state));
    if (!flow) throw fail('unknown, expired or spent state');
    if (query.error !== undefined) throw fail(`provider answered error=${query.error}`);
    if (query.code === undefined || query.code === '') throw fail('no code');
    const codeVerifier = this.#box.open(flow.code_verifier);
    if (codeVerifier === null) throw fail('code verifier does not open (APP_SECRET changed?)');

    let profile;
    try {
      profile = await this.#providers.complete(provider, query, {
        state,
        nonce: flow.nonce,
        codeVerifier,
      });
    } catch (error) {
      if (error instanceof ProviderLoginError) throw fail(error.message, error.cause);
      throw error;
    }
    const email = profile.email === null ? null : normalizeEmail(profile.email);
    const verifiedEmail = profile.emailVerified ? email : null;
    const audit = (e: AuditEvent): AuditEvent => ({
      ...auditClient(client),
      subjectType: 'user',
      ...e,
      data: { provider: providerId, ...e.data },
    });

    // A new link: its event in the transaction, its mail to the owner once committed.
    const notify: string[] = [];
    const linked = async (
      trx: IdentityDb,
      userId: string,
      identityId: string,
      via: 'signed-in' | 'verified-email',
    ) => {
      await this.#events.publish(trx, userProviderLinked, {
        data: { userId, provider: providerId, identityId, via },
        subject: { type: 'user', id: userId },
        actorId: userId,
        ownerId: userId,
        requestId: client.requestId,
      });
      notify.push(userId);
    };
    try {
      const opened = await withTransaction(this.#db, async (trx, ctx) => {
        notify.length = 0;
        ctx.afterCommit(() => {
          for (const userId of notify)
            this.#notices.notify(userId, { kind: 'provider-linked', provider: providerId });
        });
        const existing = await repo.findIdentity(trx, providerId, profile.subject);
        const seen = { email, emailVerified: verifiedEmail !== null };
        let userId: string;
        if (flow.link_user_id !== null) {
          userId = flow.link_user_id;
          if (existing && existing.user_id !== userId)
            throw new HttpError(IdentityCodes.OIDC_IDENTITY_TAKEN);
          const session = flow.link_session_id;
          if (session === null || !(await liveSession(trx, session, userId)))
            throw fail('the session that started linking has ended');
          if (existing) {
            await repo.touchIdentity(trx, existing.id, seen);
          } else {
            const id = newId();
            if (
              !(await repo.insertIdentity(trx, {
                id,
                userId,
                provider: providerId,
                subject: profile.subject,
                ...seen,
              }))
            )
              throw new HttpError(IdentityCodes.OIDC_IDENTITY_TAKEN);
            await recordAudit(
              trx,
              audit({
                action: 'auth.oidc.link',
                actorId: userId,
                subjectId: userId,
                data: { identityId: id, via: 'signed-in' },
              }),
            );
            await linked(trx, userId, id, 'signed-in');
          }
        } else if (existing) {
          userId = existing.user_id;
          await repo.touchIdentity(trx, existing.id, seen);
        } else if (verifiedEmail !== null) {
          const account = await repo.lockAccountByEmail(trx, verifiedEmail);
          const id = newId();
          if (account) {
            userId = account.id;
            if (account.email_verified_at === null) {
              await repo.claimUnverifiedAccount(trx, userId);
              // Sessions exist only with AUTH_REQUIRE_VERIFIED_EMAIL off; they were not the owner's.
              const ended = await revokeSessions(trx, { userId }, 'claimed-by-provider');
              await publishSessionsRevoked(this.#events, trx, {
                userId,
                sessionIds: ended,
                reason: 'claimed-by-provider',
                actorId: null,
                requestId: client.requestId,
              });
            }
            await recordAudit(
              trx,
              audit({
                action: 'auth.oidc.link',
                actorId: userId,
                subjectId: userId,
                data: {
                  identityId: id,
                  via: 'verified-email',
                  claimedUnverified: account.email_verified_at === null,
                },
              }),
            );
          } else {
            userId = await this.#createAccount(
              trx,
              verifiedEmail,
              profile.usernameHint,
              client.requestId,
            );
            await recordAudit(
              trx,
              audit({
                action: 'user.register',
                actorId: userId,
                subjectId: userId,
                data: { method: 'oidc' },
              }),
            );
          }
          if (
            !(await repo.insertIdentity(trx, {
              id,
              userId,
              provider: providerId,
              subject: profile.subject,
              ...seen,
            }))
          )
            throw fail('identity linked concurrently');
          if (account) await linked(trx, userId, id, 'verified-email');
        } else {
          // Matching or creating needs an address the provider verified; an unverified one that
          // names an existing account must never link to it (anyone can type any address).
          throw fail(email === null ? 'provider gave no address' : 'provider address not verified');
        }
        await recordAudit(
          trx,
          audit({ action: 'auth.oidc.login', actorId: userId, subjectId: userId }),
        );
        return this.#identity.openSession(trx, userId, { amr: ['fed'] }, client);
      });
      return await this.#identity.tokenPair(opened);
    } catch (error) {
      if (isUniqueViolation(error)) throw fail('account created concurrently', error);
      throw error;
    }
  }

  async #createAccount(
    trx: IdentityDb,
    email: string,
    usernameHint: string | null,
    requestId: string | null,
  ): Promise<string> {
    const candidates = usernameCandidates([usernameHint, email.split('@')[0] ?? null]);
    const taken = await repo.takenUsernames(trx, candidates);
    const username = candidates.find((c) => !taken.has(c));
    if (username === undefined) throw new HttpError(IdentityCodes.OIDC_LOGIN_FAILED);
    const id = newId();
    if (!(await insertUser(trx, { id, email, username, passwordHash: null, emailVerified: true })))
      throw new HttpError(IdentityCodes.OIDC_LOGIN_FAILED);
    await this.#events.publish(trx, userRegistered, {
      data: { userId: id, username, method: 'oidc', emailVerified: true },
      subject: { type: 'user', id },
      actorId: id,
      ownerId: id,
      requestId,
    });
    return id;
  }

  /** The user's linked identities, oldest first. */
  async identities(userId: string): Promise<LinkedIdentity[]> {
    const rows = await repo.listIdentities(this.#db, userId);
    return rows.map((r) => ({
      id: r.id,
      provider: r.provider,
      email: r.email,
      linkedAt: r.created_at,
    }));
  }

  /**
   * Unlinks one of the user's identities: 404 for an id that is not theirs, 409 when it is the
   * last way in (no password and no other identity).
   */
  async unlink(userId: string, identityId: string, client: Client): Promise<void> {
    await withTransaction(this.#db, async (trx, ctx) => {
      const methods = await repo.lockSignInMethods(trx, userId);
      if (!methods) throw new HttpError(IdentityCodes.IDENTITY_NOT_FOUND);
      const removed = await repo.deleteIdentity(trx, userId, identityId);
      if (!removed) throw new HttpError(IdentityCodes.IDENTITY_NOT_FOUND);
      if (!methods.hasPassword && methods.identities <= 1)
        throw new HttpError(IdentityCodes.LAST_SIGN_IN_METHOD);
      await recordAudit(trx, {
        action: 'auth.oidc.unlink',
        actorId: userId,
        subjectType: 'user',
        subjectId: userId,
        ...auditClient(client),
        data: { provider: removed.provider, identityId },
      });
      await this.#events.publish(trx, userProviderUnlinked, {
        data: { userId, provider: removed.provider, identityId },
        subject: { type: 'user', id: userId },
        actorId: userId,
        ownerId: userId,
        requestId: client.requestId,
      });
      ctx.afterCommit(() =>
        this.#notices.notify(userId, { kind: 'provider-unlinked', provider: removed.provider }),
      );
    });
  }
}
