import { createHash, randomBytes } from 'node:crypto';
import { userTag } from '../../../platform/cache/index.ts';
import { withTransaction, newId, type AnyDb } from '../../../platform/db/index.ts';
import { API_PREFIX, HttpError } from '../../../platform/http/index.ts';
import { accountContact } from '../../../platform/identity/index.ts';
import type { Platform } from '../../../platform/modules/index.ts';
import type { ConnectableAdapter } from '../platforms/oauth.ts';
import {
  PlatformError,
  type AccountCredentials,
  type AccountRef,
  type PlatformId,
  type PublishingAccounts,
  type PublishingPostHooks,
} from '../platforms/types.ts';
import type { PublishingSettings } from '../settings.ts';
import { AccountCodes } from './accounts.errors.ts';
import { accountMetrics, type AccountMetrics } from './accounts.metrics.ts';
import { accountReauthRequired } from './accounts.events.ts';
import { reauthRequiredTemplate } from './accounts.mail.ts';
import {
  accountsDb,
  dueForRefresh,
  findAccountRow,
  findByExternal,
  findOwnedAccount,
  findOwnedAmong,
  listAccounts,
  lockAccount,
  staleSealed,
  type AccountRow,
  type AccountView,
} from './accounts.repository.ts';
import { TokenKeys } from './token-keys.ts';

/** An account as the API answers it (never a token). */
export interface AccountJson {
  id: string;
  platform: PlatformId;
  externalId: string;
  name: string;
  username: string | null;
  avatarUrl: string | null;
  status: AccountRow['status'];
  statusReason: string | null;
  scopes: string[];
  tokenExpiresAt: string | null;
  createdAt: string;
  updatedAt: string;
}

export function accountJson(row: AccountView): AccountJson {
  return {
    id: row.id,
    platform: row.platform,
    externalId: row.external_id,
    name: row.name,
    username: row.username,
    avatarUrl: row.avatar_url,
    status: row.status,
    statusReason: row.status_reason,
    scopes: row.scopes,
    tokenExpiresAt: row.token_expires_at ? new Date(row.token_expires_at).toISOString() : null,
    createdAt: new Date(row.created_at).toISOString(),
    updatedAt: new Date(row.updated_at).toISOString(),
  };
}

/** The cache tag of a user's account list. */
export const accountsTag = (userId: string) => `publishing-accounts:${userId}`;

const sha256 = (value: string) => createHash('sha256').update(value).digest('base64url');
const MAX_ACCOUNTS_LISTED = 200;
const PLATFORM_NAMES: Record<PlatformId, string> = {
  instagram: 'Instagram',
  facebook: 'Facebook',
  youtube: 'YouTube',
};

function reauth(message: string): PlatformError {
  return new PlatformError('ACCOUNT_REAUTH_REQUIRED', message, {
    retryable: false,
    action: 'reconnect_account',
  });
}

/**
 * Connected accounts: the OAuth connect (state bound to the user, PKCE), sealed tokens, their
 * refresh (one at a time per account across processes), the reauth episode (status, hook, event,
 * one mail), and `PublishingAccounts` for the posts half.
 */
export class AccountsService implements PublishingAccounts {
  readonly #platform: Platform;
  readonly #settings: PublishingSettings;
  readonly #adapters: ReadonlyMap<PlatformId, ConnectableAdapter>;
  readonly #hooks: PublishingPostHooks;
  readonly keys: TokenKeys;
  readonly #metrics: AccountMetrics;

  constructor(deps: {
    platform: Platform;
    settings: PublishingSettings;
    adapters: ReadonlyMap<PlatformId, ConnectableAdapter>;
    hooks: PublishingPostHooks;
  }) {
    this.#platform = deps.platform;
    this.#settings = deps.settings;
    this.#adapters = deps.adapters;
    this.#hooks = deps.hooks;
    this.#metrics = accountMetrics(deps.platform.metrics);
    this.keys = TokenKeys.fromSettings(
      deps.settings.PUBLISHING_TOKEN_KEYS,
      deps.platform.config.secrets.appSecret,
    );
  }

  get #db() {
    return this.#platform.database.db;
  }

  redirectUri(platform: PlatformId): string {
    const base = this.#platform.config.mail.publicUrl.replace(/\/+$/, '');
    return `${base}${API_PREFIX}/publishing/accounts/callback/${platform}`;
  }

  adapter(platform: PlatformId): ConnectableAdapter {
    const adapter = this.#adapters.get(platform);
    if (!adapter)
      throw new HttpError(AccountCodes.PUBLISHING_PLATFORM_NOT_ENABLED, {
        detail: `${platform} is not enabled on this server.`,
      });
    return adapter;
  }

  // ---- connect ----------------------------------------------------------------------------

  /** A consent URL whose state is bound to `userId` (stored hashed, single use, short-lived). */
  async startConnect(userId: string, platform: PlatformId, accountId: string | null = null) {
    const adapter = this.adapter(platform);
    const state = randomBytes(32).toString('base64url');
    const verifier = randomBytes(48).toString('base64url');
    const stateHash = sha256(state);
    await accountsDb(this.#db)
      .insertInto('publishing_oauth_state')
      .values({
        state_hash: stateHash,
        user_id: userId,
        platform,
        code_verifier_sealed: this.keys.seal(verifier, `state:${stateHash}`),
        account_id: accountId,
        expires_at: new Date(Date.now() + this.#settings.PUBLISHING_OAUTH_STATE_TTL_S * 1000),
      })
      .execute();
    return adapter.oauth.authorizeUrl({
      state,
      codeChallenge: sha256(verifier),
      redirectUri: this.redirectUri(platform),
    });
  }

  /**
   * The callback: the state names the user (the browser's redirect carries no credentials), is
   * consumed whatever happens next, and a refused consent or code answers a problem.
   */
  async completeConnect(
    platform: PlatformId,
    query: { state?: string; code?: string; error?: string; error_description?: string },
    signal: AbortSignal,
  ): Promise<AccountJson[]> {
    const adapter = this.adapter(platform);
    const invalid = () =>
      new HttpError(AccountCodes.PUBLISHING_OAUTH_STATE_INVALID, {
        detail:
          'This connect link is unknown, used or expired: start connecting the account again.',
      });
    if (!query.state) throw invalid();
    const stateHash = sha256(query.state);
    const consumed = await accountsDb(this.#db)
      .updateTable('publishing_oauth_state')
      .set({ used_at: new Date() })
      .where('state_hash', '=', stateHash)
      .where('platform', '=', platform)
      .where('used_at', 'is', null)
      .where('expires_at', '>', new Date())
      .returningAll()
      .executeTakeFirst();
    if (!consumed) throw invalid();
    if (query.error !== undefined || !query.code)
      throw new HttpError(AccountCodes.PUBLISHING_OAUTH_DENIED, {
        detail: `${PLATFORM_NAMES[platform]} did not grant access: ${query.error ?? 'no code'}${
          query.error_description ? ` (${query.error_description.slice(0, 200)})` : ''
        }.`,
      });
    const verifier = this.keys.open(consumed.code_verifier_sealed, `state:${stateHash}`);
    let identities;
    try {
      identities = await adapter.oauth.exchange(
        { code: query.code, codeVerifier: verifier, redirectUri: this.redirectUri(platform) },
        signal,
      );
    } catch (error) {
      if (error instanceof PlatformError && error.code === 'ACCOUNT_REAUTH_REQUIRED')
        throw new HttpError(AccountCodes.PUBLISHING_OAUTH_CODE_INVALID, {
          detail: `${PLATFORM_NAMES[platform]} refused the authorization code: start connecting again.`,
        });
      this.#platform.logger.warn({ err: error, platform }, 'publishing: connect failed');
      throw new HttpError(AccountCodes.PUBLISHING_PLATFORM_UNAVAILABLE, {
        detail: `${PLATFORM_NAMES[platform]} could not complete the connect: try again.`,
      });
    }
    if (identities.length === 0)
      throw new HttpError(AccountCodes.PUBLISHING_OAUTH_NO_ACCOUNT, {
        detail: `The consent granted no ${PLATFORM_NAMES[platform]} account to publish to.`,
      });
    const userId = consumed.user_id;
    const store = () =>
      withTransaction(this.#db, async (trx) => {
        const db = accountsDb(trx);
        const out: AccountView[] = [];
        for (const identity of identities) {
          const existing = await findByExternal(db, userId, platform, identity.externalId);
          const id = existing?.id ?? newId();
          const sealedAccess = this.keys.seal(identity.accessToken, `${id}:access`);
          // A consent that answers no refresh token (Google on a silent re-consent) keeps the stored one.
          const sealedRefresh =
            identity.refreshToken !== null
              ? this.keys.seal(identity.refreshToken, `${id}:refresh`)
              : (existing?.refresh_token_sealed ?? null);
          const fields = {
            name: identity.name.slice(0, 500),
            username: identity.username?.slice(0, 200) ?? null,
            avatar_url: identity.avatarUrl?.slice(0, 2048) ?? null,
            access_token_sealed: sealedAccess,
            refresh_token_sealed: sealedRefresh,
            token_expires_at: identity.expiresAt,
            scopes: [...identity.scopes],
            status: 'active' as const,
            status_reason: null,
            reauth_notified_at: null,
            last_refreshed_at: new Date(),
          };
          if (existing) {
            await db.updateTable('publishing_account').set(fields).where('id', '=', id).execute();
            // Even from active: targets paused by a refused token just before are resumed too.
            await this.#hooks.onReconnected(trx, id);
          } else {
            await db
              .insertInto('publishing_account')
              .values({
                id,
                user_id: userId,
                platform,
                external_id: identity.externalId,
                ...fields,
              })
              .execute();
          }
          const view = await findOwnedAccount(db, userId, id);
          if (view) out.push(view);
        }
        return out;
      });
    let rows: AccountView[];
    try {
      rows = await store();
    } catch (error) {
      // Two first connects of one platform account at once: the unique index lets one insert;
      // the other, run again, finds its row and updates it.
      if ((error as { code?: string }).code !== '23505') throw error;
      rows = await store();
    }
    await this.#invalidate(userId);
    return rows.map(accountJson);
  }

  // ---- reads and changes by the owner --------------------------------------------------------

  list(userId: string): Promise<AccountJson[]> {
    const cache = this.#platform.cache;
    return cache.getOrSet(
      cache.userKey(userId, 'publishing-accounts'),
      async () =>
        (await listAccounts(accountsDb(this.#db), userId, MAX_ACCOUNTS_LISTED)).map(accountJson),
      // The user's own tag too: whatever drops everything of a user drops this list.
      { ttlSeconds: 300, tags: [accountsTag(userId), userTag(userId)] },
    );
  }

  async get(userId: string, id: string): Promise<AccountJson> {
    const row = await findOwnedAccount(accountsDb(this.#db), userId, id);
    if (!row) throw notFound();
    return accountJson(row);
  }

  async remove(userId: string, id: string): Promise<void> {
    await withTransaction(this.#db, async (trx) => {
      const removed = await accountsDb(trx)
        .updateTable('publishing_account')
        .set({
          deleted_at: new Date(),
          status: 'disconnected',
          access_token_sealed: null,
          refresh_token_sealed: null,
        })
        .where('id', '=', id)
        .where('user_id', '=', userId)
        .where('deleted_at', 'is', null)
        .returning('id')
        .executeTakeFirst();
      if (!removed) throw notFound();
      await this.#hooks.onRemoved(trx, id);
    });
    await this.#invalidate(userId);
  }

  async reconnect(userId: string, id: string): Promise<string> {
    const row = await findOwnedAccount(accountsDb(this.#db), userId, id);
    if (!row) throw notFound();
    return this.startConnect(userId, row.platform, row.id);
  }

  // ---- PublishingAccounts --------------------------------------------------------------------

  async ownedBy(db: AnyDb, userId: string, ids: readonly string[]) {
    const unique = [...new Set(ids)].filter((id) => /^[0-9a-f-]{36}$/i.test(id));
    const out = new Map<string, AccountRef>();
    if (unique.length === 0) return out;
    for (const row of await findOwnedAmong(accountsDb(db), userId, unique))
      out.set(row.id, {
        id: row.id,
        userId: row.user_id,
        platform: row.platform,
        externalId: row.external_id,
        name: row.name,
        status: row.status,
      });
    return out;
  }

  async credentials(accountId: string, signal: AbortSignal): Promise<AccountCredentials> {
    let row = await findAccountRow(accountsDb(this.#db), accountId);
    if (!row) throw reauth('The account was removed.');
    if (row.status !== 'active')
      throw reauth(
        `The account must be reconnected${row.status_reason ? `: ${row.status_reason}` : '.'}`,
      );
    if (this.#needsRefresh(row)) row = await this.refreshAccount(accountId, signal);
    if (!row.access_token_sealed) throw reauth('The account holds no token.');
    return {
      accountId: row.id,
      platform: row.platform,
      externalId: row.external_id,
      accessToken: this.keys.open(row.access_token_sealed, `${row.id}:access`),
    };
  }

  async requireReauth(accountId: string, reason: string): Promise<void> {
    const userId = await withTransaction(this.#db, (trx) =>
      this.#markReauth(trx, accountId, reason),
    );
    if (userId) await this.#invalidate(userId);
  }

  // ---- refresh ------------------------------------------------------------------------------

  #needsRefresh(row: Pick<AccountRow, 'token_expires_at'>): boolean {
    return (
      row.token_expires_at !== null &&
      new Date(row.token_expires_at).getTime() <
        Date.now() + this.#settings.PUBLISHING_REFRESH_MARGIN_S * 1000
    );
  }

  /**
   * Renews the account's tokens when they expire within the margin. One refresh at a time per
   * account across processes (an advisory lock held for the call): the second caller finds the
   * row already renewed and uses it. A refused grant starts the reauth episode and throws
   * ACCOUNT_REAUTH_REQUIRED; a platform that cannot answer throws TOKEN_EXPIRED (retryable)
   * unless the current token is still valid, which is then used.
   */
  async refreshAccount(accountId: string, signal: AbortSignal): Promise<AccountRow> {
    const outcome = await withTransaction(
      this.#db,
      async (trx) => {
        await lockAccount(trx, accountId);
        const db = accountsDb(trx);
        const row = await findAccountRow(db, accountId);
        if (!row) return { refused: 'The account was removed.' } as const;
        if (row.status !== 'active')
          return { refused: row.status_reason ?? 'The account must be reconnected.' } as const;
        if (!this.#needsRefresh(row)) return { row } as const;
        const adapter = this.#adapters.get(row.platform);
        if (!adapter) return { transient: `${row.platform} is not enabled`, row } as const;
        let tokens;
        try {
          tokens = await adapter.oauth.refresh(
            {
              accessToken: row.access_token_sealed
                ? this.keys.open(row.access_token_sealed, `${row.id}:access`)
                : '',
              refreshToken: row.refresh_token_sealed
                ? this.keys.open(row.refresh_token_sealed, `${row.id}:refresh`)
                : null,
            },
            signal,
          );
        } catch (error) {
          if (error instanceof PlatformError && error.code === 'ACCOUNT_REAUTH_REQUIRED') {
            this.#metrics.refreshes.inc({ platform: row.platform, outcome: 'reauth_required' });
            const reason = error.message.slice(0, 500);
            await this.#markReauth(trx, row.id, reason);
            return { refused: reason, userId: row.user_id } as const;
          }
          this.#metrics.refreshes.inc({ platform: row.platform, outcome: 'failed' });
          return {
            transient: error instanceof Error ? error.message : String(error),
            row,
          } as const;
        }
        const updated = await db
          .updateTable('publishing_account')
          .set({
            access_token_sealed: this.keys.seal(tokens.accessToken, `${row.id}:access`),
            // Never replace a stored refresh token with nothing (Google omits it on refresh).
            ...(tokens.refreshToken
              ? { refresh_token_sealed: this.keys.seal(tokens.refreshToken, `${row.id}:refresh`) }
              : {}),
            token_expires_at: tokens.expiresAt,
            last_refreshed_at: new Date(),
          })
          .where('id', '=', row.id)
          .returningAll()
          .executeTakeFirstOrThrow();
        this.#metrics.refreshes.inc({ platform: row.platform, outcome: 'refreshed' });
        return { row: updated, refreshed: true } as const;
      },
      { retries: 0 },
    );
    if ('refused' in outcome) {
      if ('userId' in outcome && outcome.userId) await this.#invalidate(outcome.userId);
      throw reauth(`The account must be reconnected: ${outcome.refused}`);
    }
    if ('transient' in outcome) {
      const row = outcome.row;
      if (row.token_expires_at && new Date(row.token_expires_at).getTime() > Date.now() + 5_000) {
        this.#platform.logger.warn(
          { accountId, platform: row.platform, reason: outcome.transient },
          'publishing: token refresh failed, the current token is still valid',
        );
        return row;
      }
      throw new PlatformError(
        'TOKEN_EXPIRED',
        `The token could not be renewed: ${outcome.transient}`,
        {
          retryable: true,
          action: 'retry_later',
        },
      );
    }
    if ('refreshed' in outcome) await this.#invalidate(outcome.row.user_id);
    return outcome.row;
  }

  /** The refresh job's round: every active account expiring within the margin. */
  async refreshDue(signal: AbortSignal): Promise<{ refreshed: number; failed: number }> {
    const before = new Date(Date.now() + this.#settings.PUBLISHING_REFRESH_MARGIN_S * 1000);
    const due = await dueForRefresh(accountsDb(this.#db), before, 500);
    let refreshed = 0;
    let failed = 0;
    for (const { id } of due) {
      if (signal.aborted) break;
      try {
        await this.refreshAccount(id, signal);
        refreshed += 1;
      } catch (error) {
        failed += 1;
        this.#platform.logger.warn(
          { accountId: id, err: error },
          'publishing: token refresh failed',
        );
      }
    }
    // Connect links are single-use and short-lived: used or expired ones go after a day.
    await accountsDb(this.#db)
      .deleteFrom('publishing_oauth_state')
      .where('expires_at', '<', new Date(Date.now() - 24 * 3600 * 1000))
      .execute();
    return { refreshed, failed };
  }

  /**
   * Starts a reauth episode once: the row moves from active to reauth_required (a second call
   * finds it moved and does nothing), the posts half pauses its targets, the event is written and
   * one mail goes to the owner, all in the caller's transaction. Answers the owner's id, or null.
   */
  async #markReauth(trx: AnyDb, accountId: string, reason: string): Promise<string | null> {
    const moved = await accountsDb(trx)
      .updateTable('publishing_account')
      .set({
        status: 'reauth_required',
        status_reason: reason.slice(0, 500),
        reauth_notified_at: new Date(),
      })
      .where('id', '=', accountId)
      .where('status', '=', 'active')
      .where('deleted_at', 'is', null)
      .returning(['id', 'user_id', 'platform', 'name'])
      .executeTakeFirst();
    if (!moved) return null;
    // Counted before the commit: a rolled-back episode (rare) would count once too many.
    this.#metrics.reauth.inc({ platform: moved.platform });
    await this.#hooks.onReauthRequired(trx, accountId);
    await this.#platform.events.publish(trx, accountReauthRequired, {
      data: { accountId, platform: moved.platform, reason: reason.slice(0, 500) },
      subject: { type: 'publishing_account', id: accountId },
      actorId: null,
      ownerId: moved.user_id,
    });
    const contact = await accountContact(trx, moved.user_id);
    if (contact)
      await this.#platform.mail.send(
        {
          template: reauthRequiredTemplate,
          to: contact.email,
          vars: {
            username: contact.username,
            platform: PLATFORM_NAMES[moved.platform],
            accountName: moved.name,
            reason: reason.slice(0, 300),
          },
          userId: moved.user_id,
        },
        { trx },
      );
    return moved.user_id;
  }

  // ---- key rotation -------------------------------------------------------------------------

  /**
   * Re-seals every token sealed under an older key with the current one (old keys must still be
   * listed in `PUBLISHING_TOKEN_KEYS` until this has run). Batches under row locks; answers the
   * number of accounts re-sealed.
   */
  async rotateTokenKeys(batch = 200): Promise<number> {
    let resealed = 0;
    let after: string | null = null;
    for (;;) {
      const pass: { rows: number; last: string | null; resealed: number } = await withTransaction(
        this.#db,
        async (trx) => {
          const db = accountsDb(trx);
          const rows = await staleSealed(db, this.keys.currentKid, after, batch);
          let count = 0;
          for (const row of rows) {
            const reseal = (sealed: string | null, column: 'access' | 'refresh') =>
              sealed === null || !this.keys.isStale(sealed)
                ? sealed
                : this.keys.seal(
                    this.keys.open(sealed, `${row.id}:${column}`),
                    `${row.id}:${column}`,
                  );
            let access: string | null;
            let refresh: string | null;
            try {
              access = reseal(row.access_token_sealed, 'access');
              refresh = reseal(row.refresh_token_sealed, 'refresh');
            } catch (error) {
              // Sealed under a key no longer listed: left as is (the account will need reconnecting).
              this.#platform.logger.warn(
                { accountId: row.id, kid: TokenKeys.kidOf(row.access_token_sealed ?? '') },
                `publishing: token not re-sealed: ${error instanceof Error ? error.message : String(error)}`,
              );
              continue;
            }
            await db
              .updateTable('publishing_account')
              .set({ access_token_sealed: access, refresh_token_sealed: refresh })
              .where('id', '=', row.id)
              .execute();
            count += 1;
          }
          return { rows: rows.length, last: rows.at(-1)?.id ?? null, resealed: count };
        },
      );
      resealed += pass.resealed;
      if (pass.rows < batch || pass.last === null) return resealed;
      after = pass.last;
    }
  }

  async #invalidate(userId: string): Promise<void> {
    await this.#platform.cache.invalidateTag(accountsTag(userId));
  }
}

function notFound(): HttpError {
  return new HttpError(AccountCodes.PUBLISHING_ACCOUNT_NOT_FOUND, {
    detail: 'No such account.',
  });
}
