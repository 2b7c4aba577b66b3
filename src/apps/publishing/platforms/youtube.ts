/**
 * YouTube through the Data API v3 with Google OAuth: `videos.insert` as a resumable upload (the
 * metadata opens a session, then the bytes are PUT to it). Our marker rides as a tag (tags are
 * not shown to viewers) and is found again through the channel's uploads playlist.
 */
import { DateTime } from 'luxon';
import { Type } from 'typebox';
import type { PlatformAnswer, PlatformCall, PlatformHttp } from './http.ts';
import { markSentOn5xx, retryAfterMs } from './http.ts';
import { markerTag } from './marker.ts';
import type { ConnectableAdapter, PlatformEndpoints, TokenSet } from './oauth.ts';
import { checkRules, DAY_MS, MB } from './rules.ts';
import {
  PlatformError,
  type AccountCredentials,
  type ContentRules,
  type PublishedPost,
} from './types.ts';

const ID = 'youtube';
const SCOPES = [
  'https://www.googleapis.com/auth/youtube.upload',
  'https://www.googleapis.com/auth/youtube.readonly',
  'https://www.googleapis.com/auth/youtube.force-ssl',
];

/** The description takes 5,000 characters; one video per post, up to 256 GB and 12 hours. */
export const youtubeRules: ContentRules = {
  maxTextLength: 5_000,
  minMedia: 1,
  maxMedia: 1,
  mediaTypes: ['video/mp4', 'video/quicktime', 'video/webm', 'video/x-msvideo', 'video/mpeg'],
  maxImageBytes: 0,
  maxVideoBytes: 256 * 1024 * MB,
  aspectRatio: null,
  maxVideoDurationS: 12 * 3600,
  mixedMedia: false,
};

export const YoutubeOptions = Type.Object(
  {
    title: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 100,
        description: 'The video title (100 characters; default: the first line of the text).',
      }),
    ),
    privacy: Type.Optional(
      Type.Union([Type.Literal('public'), Type.Literal('unlisted'), Type.Literal('private')], {
        description: 'Default public.',
      }),
    ),
    categoryId: Type.Optional(
      Type.String({ pattern: '^[0-9]{1,3}$', description: 'Default 22 (People & Blogs).' }),
    ),
    madeForKids: Type.Optional(
      Type.Boolean({ description: 'Self-declared made for kids (default false).' }),
    ),
    tags: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 100 }), {
        maxItems: 30,
        description: 'Tags (500 characters in all).',
      }),
    ),
  },
  { additionalProperties: false },
);

interface GoogleErrorBody {
  error?:
    { code?: number; message?: string; errors?: { reason?: string; domain?: string }[] } | string;
  error_description?: string;
}

/** YouTube's daily quota resets at midnight Pacific time. */
export function untilQuotaReset(now: DateTime = DateTime.now()): number {
  const pacific = now.setZone('America/Los_Angeles');
  return Math.max(1000, pacific.plus({ days: 1 }).startOf('day').toMillis() - now.toMillis());
}

export function googleFailure(answer: PlatformAnswer): PlatformError {
  const body = answer.body as GoogleErrorBody | null;
  const err = typeof body?.error === 'object' ? body.error : undefined;
  const reason =
    err?.errors?.[0]?.reason ?? (typeof body?.error === 'string' ? body.error : undefined);
  const status = answer.status >= 200 && answer.status < 300 ? (err?.code ?? 500) : answer.status;
  const platformCode = reason ?? `http_${status}`;
  const message = `${ID}: ${err?.message ?? body?.error_description ?? `HTTP ${answer.status}`}`;
  const wait = retryAfterMs(answer.headers);
  const make = (
    code: ConstructorParameters<typeof PlatformError>[0],
    retryable: boolean,
    action: ConstructorParameters<typeof PlatformError>[2]['action'],
    retryAfter = wait,
  ) =>
    new PlatformError(code, message, { retryable, action, retryAfterMs: retryAfter, platformCode });
  if (
    reason === 'invalid_grant' ||
    status === 401 ||
    reason === 'youtubeSignupRequired' ||
    reason === 'insufficientPermissions' ||
    reason === 'forbidden'
  )
    return make('ACCOUNT_REAUTH_REQUIRED', false, 'reconnect_account');
  if (
    reason === 'quotaExceeded' ||
    reason === 'dailyLimitExceeded' ||
    reason === 'uploadLimitExceeded'
  )
    return make('PLATFORM_QUOTA_EXHAUSTED', true, 'retry_later', wait ?? untilQuotaReset());
  if (status === 429 || reason === 'rateLimitExceeded' || reason === 'userRateLimitExceeded')
    return make('PLATFORM_RATE_LIMITED', true, 'retry_later');
  if (
    reason === 'invalidVideoFormat' ||
    reason === 'mediaBodyRequired' ||
    reason === 'invalidVideoMetadata' ||
    reason === 'videoTooLong'
  )
    return make('MEDIA_REJECTED', false, 'edit_post');
  if (status >= 500 || reason === 'backendError' || !err)
    return make('PLATFORM_UNAVAILABLE', true, 'retry_later');
  return make('CONTENT_REJECTED', false, 'edit_post');
}

export function createYoutube(http: PlatformHttp, ep: PlatformEndpoints): ConnectableAdapter {
  async function api<T>(call: PlatformCall): Promise<{ body: T; answer: PlatformAnswer }> {
    const answer = await http.call(call);
    const body = answer.body as (T & GoogleErrorBody) | null;
    if (answer.status >= 200 && answer.status < 300 && (body === null || body.error === undefined))
      return { body: (body ?? {}) as T, answer };
    throw markSentOn5xx(googleFailure(answer), call, answer.status);
  }
  const get = async <T>(
    account: AccountCredentials | string,
    path: string,
    query: Record<string, string | number>,
    signal: AbortSignal,
  ) =>
    (
      await api<T>({
        method: 'GET',
        url: `${ep.apiUrl}${path}`,
        query,
        headers: {
          authorization: `Bearer ${typeof account === 'string' ? account : account.accessToken}`,
        },
        signal,
        timeoutMs: ep.timeoutMs,
      })
    ).body;

  async function token(
    form: Record<string, string>,
    signal: AbortSignal,
  ): Promise<TokenSet & { scope?: string }> {
    const { body } = await api<{
      access_token?: string;
      refresh_token?: string;
      expires_in?: number;
      scope?: string;
    }>({
      method: 'POST',
      url: ep.tokenUrl,
      form: { client_id: ep.clientId, client_secret: ep.clientSecret, ...form },
      signal,
      timeoutMs: ep.timeoutMs,
    }).catch((error: unknown) => {
      // The token endpoint answers 400 invalid_grant for a used, expired or revoked code or grant.
      if (error instanceof PlatformError && error.code === 'CONTENT_REJECTED')
        throw new PlatformError('ACCOUNT_REAUTH_REQUIRED', error.message, {
          retryable: false,
          action: 'reconnect_account',
          platformCode: error.platformCode,
        });
      throw error;
    });
    if (!body.access_token)
      throw new PlatformError('PLATFORM_UNAVAILABLE', `${ID}: no token in the answer`, {
        retryable: true,
        action: 'retry_later',
      });
    return {
      accessToken: body.access_token,
      refreshToken: body.refresh_token ?? null,
      expiresAt:
        typeof body.expires_in === 'number' ? new Date(Date.now() + body.expires_in * 1000) : null,
      scope: body.scope,
    };
  }

  return {
    id: ID,
    displayName: 'YouTube',
    rules: youtubeRules,
    quotas: [
      {
        endpoint: 'upload',
        limit: 6,
        periodMs: DAY_MS,
        description:
          'YouTube Data API: 10,000 quota units per day per project, videos.insert costs 1,600: six uploads a day (the project’s quota; raise it through Google’s audit form).',
      },
    ],
    optionsSchema: YoutubeOptions,
    validate: (content) => {
      const problems = checkRules(ID, youtubeRules, content);
      const title =
        typeof content.options.title === 'string'
          ? content.options.title
          : defaultTitle(content.text);
      if ([...title].length > 100)
        problems.push({
          code: 'CONTENT_REJECTED',
          rule: 'youtube.title.max_length',
          message: 'A YouTube title takes at most 100 characters.',
        });
      if (/[<>]/.test(title) || /[<>]/.test(content.text))
        problems.push({
          code: 'CONTENT_REJECTED',
          rule: 'youtube.angle_brackets',
          message: 'YouTube titles and descriptions cannot contain < or >.',
        });
      const tags = Array.isArray(content.options.tags) ? (content.options.tags as string[]) : [];
      if (tags.join(',').length + 19 > 500)
        problems.push({
          code: 'CONTENT_REJECTED',
          rule: 'youtube.tags.max_length',
          message: 'YouTube tags take 500 characters in all.',
        });
      return problems;
    },
    async publish(account, request, signal): Promise<PublishedPost> {
      const video = request.media[0];
      if (!video)
        throw new PlatformError('MEDIA_REJECTED', `${ID}: a video is required`, {
          retryable: false,
          action: 'edit_post',
        });
      const o = request.options;
      const tags = [
        ...(Array.isArray(o.tags) ? (o.tags as string[]) : []),
        markerTag(request.marker),
      ];
      const metadata = {
        snippet: {
          title: typeof o.title === 'string' ? o.title : defaultTitle(request.text),
          description: request.text,
          tags,
          categoryId: typeof o.categoryId === 'string' ? o.categoryId : '22',
        },
        status: {
          privacyStatus: typeof o.privacy === 'string' ? o.privacy : 'public',
          selfDeclaredMadeForKids: o.madeForKids === true,
        },
      };
      // Opening the session creates nothing visible: a failure here is simply retried.
      const session = await api<unknown>({
        method: 'POST',
        url: `${ep.apiUrl}/upload/youtube/v3/videos`,
        query: { uploadType: 'resumable', part: 'snippet,status' },
        headers: {
          authorization: `Bearer ${account.accessToken}`,
          'x-upload-content-length': String(video.size),
          'x-upload-content-type': video.contentType,
        },
        json: metadata,
        signal,
        timeoutMs: ep.timeoutMs,
      });
      const location = session.answer.headers.location;
      const uploadUrl = Array.isArray(location) ? location[0] : location;
      if (!uploadUrl)
        throw new PlatformError('PLATFORM_UNAVAILABLE', `${ID}: no upload session`, {
          retryable: true,
          action: 'retry_later',
        });
      const { body } = await api<{ id?: string }>({
        method: 'PUT',
        url: uploadUrl,
        headers: {
          authorization: `Bearer ${account.accessToken}`,
          'content-type': video.contentType,
          'content-length': String(video.size),
        },
        stream: await video.open(),
        signal,
        timeoutMs: ep.uploadTimeoutMs,
        publishing: true,
      });
      if (!body.id)
        throw new PlatformError(
          'OUTCOME_UNKNOWN',
          `${ID}: the upload answered without a video id`,
          {
            retryable: true,
            action: 'none',
            sent: true,
          },
        );
      return { externalId: body.id, url: `https://www.youtube.com/watch?v=${body.id}` };
    },
    async findByMarker(account, marker, since, signal) {
      // The channel's uploads playlist is UU + the channel id without its UC (1 unit a page),
      // then the videos' tags (1 unit): far cheaper than search.list (100 units).
      const playlistId = account.externalId.startsWith('UC')
        ? `UU${account.externalId.slice(2)}`
        : account.externalId;
      const items = await get<{
        items?: { contentDetails?: { videoId?: string; videoPublishedAt?: string } }[];
      }>(
        account,
        '/youtube/v3/playlistItems',
        { part: 'contentDetails', playlistId, maxResults: 25 },
        signal,
      );
      const floor = since.getTime() - 60_000;
      const ids = (items.items ?? [])
        .filter((i) => {
          const at = Date.parse(i.contentDetails?.videoPublishedAt ?? '');
          return Number.isNaN(at) || at >= floor;
        })
        .map((i) => i.contentDetails?.videoId)
        .filter((id): id is string => typeof id === 'string');
      if (ids.length === 0) return null;
      const videos = await get<{ items?: { id: string; snippet?: { tags?: string[] } }[] }>(
        account,
        '/youtube/v3/videos',
        { part: 'snippet', id: ids.join(',') },
        signal,
      );
      const tag = markerTag(marker);
      const found = (videos.items ?? []).find((v) => v.snippet?.tags?.includes(tag));
      return found
        ? { externalId: found.id, url: `https://www.youtube.com/watch?v=${found.id}` }
        : null;
    },
    async deletePost(account, externalId, signal) {
      await api<unknown>({
        method: 'DELETE',
        url: `${ep.apiUrl}/youtube/v3/videos`,
        query: { id: externalId },
        headers: { authorization: `Bearer ${account.accessToken}` },
        signal,
        timeoutMs: ep.timeoutMs,
      });
    },
    oauth: {
      scopes: SCOPES,
      authorizeUrl(input) {
        const url = new URL(ep.authUrl);
        url.searchParams.set('client_id', ep.clientId);
        url.searchParams.set('redirect_uri', input.redirectUri);
        url.searchParams.set('response_type', 'code');
        url.searchParams.set('scope', SCOPES.join(' '));
        url.searchParams.set('state', input.state);
        // offline + consent: Google answers a refresh token (it omits it on a silent re-consent).
        url.searchParams.set('access_type', 'offline');
        url.searchParams.set('prompt', 'consent');
        url.searchParams.set('include_granted_scopes', 'true');
        url.searchParams.set('code_challenge', input.codeChallenge);
        url.searchParams.set('code_challenge_method', 'S256');
        return url.toString();
      },
      async exchange(input, signal) {
        const tokens = await token(
          {
            grant_type: 'authorization_code',
            code: input.code,
            code_verifier: input.codeVerifier,
            redirect_uri: input.redirectUri,
          },
          signal,
        );
        const channels = await get<{
          items?: {
            id: string;
            snippet?: {
              title?: string;
              customUrl?: string;
              thumbnails?: { default?: { url?: string } };
            };
          }[];
        }>(tokens.accessToken, '/youtube/v3/channels', { part: 'snippet', mine: 'true' }, signal);
        return (channels.items ?? []).map((c) => ({
          externalId: c.id,
          name: c.snippet?.title ?? c.id,
          username: c.snippet?.customUrl ?? null,
          avatarUrl: c.snippet?.thumbnails?.default?.url ?? null,
          accessToken: tokens.accessToken,
          refreshToken: tokens.refreshToken,
          expiresAt: tokens.expiresAt,
          scopes: tokens.scope ? tokens.scope.split(' ') : SCOPES,
        }));
      },
      async refresh(current, signal) {
        if (!current.refreshToken)
          throw new PlatformError('ACCOUNT_REAUTH_REQUIRED', `${ID}: no refresh token stored`, {
            retryable: false,
            action: 'reconnect_account',
          });
        const tokens = await token(
          { grant_type: 'refresh_token', refresh_token: current.refreshToken },
          signal,
        );
        return {
          accessToken: tokens.accessToken,
          refreshToken: tokens.refreshToken,
          expiresAt: tokens.expiresAt,
        };
      },
    },
  };
}

function defaultTitle(text: string): string {
  const line = text.split('\n')[0]?.trim() ?? '';
  const chars = [...line];
  return chars.length === 0 ? 'Untitled' : chars.slice(0, 100).join('');
}
