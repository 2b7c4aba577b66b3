/**
 * The contract between the publishing app's two halves: the platform adapters and connected
 * accounts (`platforms/`, `accounts/`) and the posts, scheduling and publishing pipeline
 * (`posts/`). Each social platform is one adapter behind `PlatformAdapter`; the pipeline never
 * knows which platform it talks to beyond its id, rules and quotas.
 */
import type { Readable } from 'node:stream';
import type { TObject } from 'typebox';
import type { AnyDb } from '../../../platform/db/index.ts';

export const PLATFORM_IDS = ['instagram', 'facebook', 'youtube'] as const;
export type PlatformId = (typeof PLATFORM_IDS)[number];

/** The typed reasons a target failed or waits; `retryable` and `action` come with each. */
export const PUBLISH_ERROR_CODES = [
  'ACCOUNT_REAUTH_REQUIRED',
  'TOKEN_EXPIRED',
  'MEDIA_REJECTED',
  'CONTENT_REJECTED',
  'PLATFORM_RATE_LIMITED',
  'PLATFORM_QUOTA_EXHAUSTED',
  'PLATFORM_UNAVAILABLE',
  'DUPLICATE_CONTENT',
  'OUTCOME_UNKNOWN',
] as const;
export type PublishErrorCode = (typeof PUBLISH_ERROR_CODES)[number];

/** What the owner can do about a failure. */
export type PublishErrorAction = 'reconnect_account' | 'edit_post' | 'retry_later' | 'none';

/**
 * A platform's answer, typed. Adapters throw only this (a network error, a timeout, a 5xx, a 200
 * carrying an error body: each becomes one of these). `retryAfterMs`: the platform said when
 * (429/quota `Retry-After`, or the quota window); `sent`: the request may have reached the
 * platform (a timeout or reset after sending), so the outcome is unknown until looked up.
 */
export class PlatformError extends Error {
  readonly code: PublishErrorCode;
  readonly retryable: boolean;
  readonly action: PublishErrorAction;
  readonly retryAfterMs: number | undefined;
  readonly sent: boolean;
  /** The platform's own error code or subcode, kept for support (never a token). */
  readonly platformCode: string | undefined;

  constructor(
    code: PublishErrorCode,
    message: string,
    options: {
      retryable: boolean;
      action: PublishErrorAction;
      retryAfterMs?: number;
      sent?: boolean;
      platformCode?: string;
      cause?: unknown;
    },
  ) {
    super(message, { cause: options.cause });
    this.name = 'PlatformError';
    this.code = code;
    this.retryable = options.retryable;
    this.action = options.action;
    this.retryAfterMs = options.retryAfterMs;
    this.sent = options.sent ?? false;
    this.platformCode = options.platformCode;
  }
}

/** A platform's content rules, answered by `GET /platforms` and checked at create and at publish. */
export interface ContentRules {
  readonly maxTextLength: number;
  readonly minMedia: number;
  readonly maxMedia: number;
  /** Media types accepted at all (`image/jpeg`, `video/mp4`...). */
  readonly mediaTypes: readonly string[];
  readonly maxImageBytes: number;
  readonly maxVideoBytes: number;
  /** Width / height bounds for images and videos (Instagram feed: 0.8 to 1.91); null: any. */
  readonly aspectRatio: { readonly min: number; readonly max: number } | null;
  readonly maxVideoDurationS: number | null;
  /** May images and videos be mixed in one post. */
  readonly mixedMedia: boolean;
}

/** One declared limit: `limit` operations per `periodMs` per account on `endpoint`. */
export interface QuotaRule {
  readonly endpoint: 'publish' | 'upload' | 'api';
  readonly limit: number;
  readonly periodMs: number;
  readonly description: string;
}

/** One piece of media of a post, as an adapter receives it (a ready file of the post's owner). */
export interface PublishMedia {
  readonly fileId: string;
  readonly contentType: string;
  readonly size: number;
  readonly width: number | null;
  readonly height: number | null;
  /** A short-lived URL the platform can fetch the bytes from (Instagram, Facebook pull media). */
  url(): Promise<string>;
  /** The bytes, for platforms we upload to (YouTube's resumable upload). */
  open(): Promise<Readable>;
}

/** What a post target asks a platform to publish. */
export interface PublishRequest {
  /** Our idempotency marker for this target (stable across attempts): attached where the platform keeps it, used by `findByMarker`. */
  readonly marker: string;
  readonly text: string;
  readonly media: readonly PublishMedia[];
  /** The target's options, valid against the adapter's `optionsSchema`. */
  readonly options: Readonly<Record<string, unknown>>;
}

/** A post on the platform. */
export interface PublishedPost {
  readonly externalId: string;
  readonly url: string;
}

/** A platform account as the publishing pipeline uses it. */
export interface AccountCredentials {
  readonly accountId: string;
  readonly platform: PlatformId;
  /** The account's id on the platform (Instagram user, Page, YouTube channel). */
  readonly externalId: string;
  /** Decrypted, valid now (refreshed first when it was about to expire). Never logged. */
  readonly accessToken: string;
}

/** A content problem found by `validate`: the rule broken and a message for the author. */
export interface ContentProblem {
  readonly code: 'CONTENT_REJECTED' | 'MEDIA_REJECTED';
  readonly rule: string;
  readonly message: string;
}

/** Content as `validate` sees it, before anything is sent. */
export interface ContentToValidate {
  readonly text: string;
  readonly media: readonly {
    contentType: string;
    size: number;
    width: number | null;
    height: number | null;
    durationS: number | null;
  }[];
  readonly options: Readonly<Record<string, unknown>>;
}

/** One social platform. Every network call takes an AbortSignal and throws only `PlatformError`. */
export interface PlatformAdapter {
  readonly id: PlatformId;
  readonly displayName: string;
  readonly rules: ContentRules;
  readonly quotas: readonly QuotaRule[];
  /** The per-target `options` this platform takes (YouTube title and privacy, Instagram reel or feed). */
  readonly optionsSchema: TObject;
  /** Every rule `content` breaks (empty: fine). Pure. */
  validate(content: ContentToValidate): ContentProblem[];
  /** Publishes; may take long (container status polling, resumable upload). */
  publish(
    account: AccountCredentials,
    request: PublishRequest,
    signal: AbortSignal,
  ): Promise<PublishedPost>;
  /** The post carrying `marker` made since `since`, or null: how an unknown outcome is settled. */
  findByMarker(
    account: AccountCredentials,
    marker: string,
    since: Date,
    signal: AbortSignal,
  ): Promise<PublishedPost | null>;
  /** Removes a published post (used by delete of a published post where the platform allows). */
  deletePost(account: AccountCredentials, externalId: string, signal: AbortSignal): Promise<void>;
}

export type AccountStatus = 'active' | 'reauth_required' | 'disconnected';

/** A connected account as the posts half sees it. */
export interface AccountRef {
  readonly id: string;
  readonly userId: string;
  readonly platform: PlatformId;
  readonly externalId: string;
  readonly name: string;
  readonly status: AccountStatus;
}

/** What the accounts half offers the posts half (implemented in `accounts/`, wired in `index.ts`). */
export interface PublishingAccounts {
  /** The user's accounts among `ids` (another user's and unknown ids are simply absent), one query. */
  ownedBy(db: AnyDb, userId: string, ids: readonly string[]): Promise<Map<string, AccountRef>>;
  /**
   * A usable token for publishing, refreshed first when it expires within the refresh margin.
   * Throws `PlatformError` ACCOUNT_REAUTH_REQUIRED when the account needs reconnecting (and marks
   * it so, once), TOKEN_EXPIRED (retryable) when a refresh failed transiently.
   */
  credentials(accountId: string, signal: AbortSignal): Promise<AccountCredentials>;
  /**
   * The platform refused the token while publishing: the account becomes `reauth_required`
   * (event and one mail to the owner, once), its waiting targets paused through the posts hook.
   */
  requireReauth(accountId: string, reason: string): Promise<void>;
}

/** What the posts half offers the accounts half (hooks run inside the accounts' transaction). */
export interface PublishingPostHooks {
  /** The account needs reconnecting: its scheduled targets are paused (failed, ACCOUNT_REAUTH_REQUIRED, retryable). */
  onReauthRequired(trx: AnyDb, accountId: string): Promise<void>;
  /** The account was reconnected: its paused targets whose time has not passed are scheduled again. */
  onReconnected(trx: AnyDb, accountId: string): Promise<void>;
  /** The account was removed: its scheduled targets are cancelled. */
  onRemoved(trx: AnyDb, accountId: string): Promise<void>;
}
