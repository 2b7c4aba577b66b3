/**
 * Instagram through the Instagram Graph API with Facebook Login: a professional account linked
 * to a Page. Publishing is two steps: a media container (`POST /{ig-user-id}/media`, the platform
 * fetches the media from our signed URL), polled until `FINISHED`, then `media_publish`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Type } from 'typebox';
import { FacebookLogin, graphCall, graphTime, grantedPages } from './graph.ts';
import type { PlatformHttp } from './http.ts';
import { carriesMarker, MARKER_LENGTH, withInvisibleMarker } from './marker.ts';
import type { ConnectableAdapter, ConnectedIdentity, PlatformEndpoints } from './oauth.ts';
import { checkRules, DAY_MS, MB } from './rules.ts';
import {
  PlatformError,
  type AccountCredentials,
  type ContentProblem,
  type ContentRules,
  type ContentToValidate,
  type PublishedPost,
  type PublishRequest,
} from './types.ts';

const ID = 'instagram';
const SCOPES = [
  'instagram_basic',
  'instagram_content_publish',
  'pages_show_list',
  'pages_read_engagement',
  'business_management',
];

/**
 * Documented limits: caption 2,200 characters (less our invisible marker), up to 10 carousel
 * items, JPEG only for images (8 MiB), width/height 4:5 to 1.91:1 for feed images, reels MP4/MOV
 * up to 300 MB and 15 minutes.
 */
export const instagramRules: ContentRules = {
  maxTextLength: 2_200 - MARKER_LENGTH,
  minMedia: 1,
  maxMedia: 10,
  mediaTypes: ['image/jpeg', 'video/mp4', 'video/quicktime'],
  maxImageBytes: 8 * MB,
  maxVideoBytes: 300 * MB,
  aspectRatio: { min: 0.8, max: 1.91 },
  maxVideoDurationS: 900,
  mixedMedia: true,
};

export const InstagramOptions = Type.Object(
  {
    kind: Type.Optional(
      Type.Union([Type.Literal('feed'), Type.Literal('reel')], {
        description: 'A feed post (image or carousel) or a reel (one video). Default feed.',
      }),
    ),
    shareToFeed: Type.Optional(
      Type.Boolean({
        description: 'Reels: also show the reel in the profile feed (default true).',
      }),
    ),
  },
  { additionalProperties: false },
);

export function createInstagram(http: PlatformHttp, ep: PlatformEndpoints): ConnectableAdapter {
  const login = new FacebookLogin(http, ep, ID, SCOPES);
  const auth = (account: AccountCredentials) => ({
    authorization: `Bearer ${account.accessToken}`,
  });
  const call = <T>(
    account: AccountCredentials,
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    signal: AbortSignal,
    extra: {
      form?: Record<string, string | undefined>;
      query?: Record<string, string | number>;
      publishing?: boolean;
    } = {},
  ) =>
    graphCall<T>(http, ID, {
      method,
      url: `${ep.apiUrl}${path}`,
      headers: auth(account),
      signal,
      timeoutMs: ep.timeoutMs,
      ...extra,
    });

  async function container(
    account: AccountCredentials,
    form: Record<string, string | undefined>,
    signal: AbortSignal,
  ): Promise<string> {
    const body = await call<{ id?: string }>(
      account,
      'POST',
      `/${account.externalId}/media`,
      signal,
      { form },
    );
    if (!body.id) throw unavailable('no container id in the answer');
    return body.id;
  }

  /** Waits for a container to be ready; its media was refused when it ends in ERROR. */
  async function ready(
    account: AccountCredentials,
    id: string,
    signal: AbortSignal,
  ): Promise<void> {
    for (let poll = 0; poll < ep.pollLimit; poll++) {
      const body = await call<{ status_code?: string; status?: string }>(
        account,
        'GET',
        `/${id}`,
        signal,
        {
          query: { fields: 'status_code,status' },
        },
      );
      switch (body.status_code ?? 'IN_PROGRESS') {
        case 'FINISHED':
        case 'PUBLISHED':
          return;
        case 'ERROR':
          throw new PlatformError(
            'MEDIA_REJECTED',
            `${ID}: ${body.status ?? 'the media was refused'}`,
            {
              retryable: false,
              action: 'edit_post',
              platformCode: 'container_error',
            },
          );
        case 'EXPIRED':
          throw unavailable('the media container expired before publishing');
        default:
          await sleep(ep.pollMs, undefined, { signal }).catch(() => {
            throw unavailable('cancelled while the media was processed');
          });
      }
    }
    throw unavailable(`the media was still processing after ${ep.pollLimit} checks`);
  }

  async function permalink(
    account: AccountCredentials,
    id: string,
    signal: AbortSignal,
  ): Promise<string> {
    try {
      const body = await call<{ permalink?: string }>(account, 'GET', `/${id}`, signal, {
        query: { fields: 'permalink' },
      });
      return body.permalink ?? `https://www.instagram.com/`;
    } catch {
      // Published already: a missing link must not turn the success into a failure.
      return 'https://www.instagram.com/';
    }
  }

  return {
    id: ID,
    displayName: 'Instagram',
    rules: instagramRules,
    quotas: [
      {
        endpoint: 'publish',
        limit: 100,
        periodMs: DAY_MS,
        description:
          'Content publishing limit: 100 API-published posts per account in a moving 24 h (a carousel counts as one; GET /{ig-user-id}/content_publishing_limit reads the usage).',
      },
      {
        endpoint: 'api',
        limit: 200,
        periodMs: 3_600_000,
        description: 'Graph API: about 200 calls per account and hour (Business Use Case limit).',
      },
    ],
    optionsSchema: InstagramOptions,
    validate(content: ContentToValidate): ContentProblem[] {
      const problems = checkRules(ID, instagramRules, content);
      const kind = content.options.kind === 'reel' ? 'reel' : 'feed';
      const media = content.media;
      if (kind === 'reel') {
        if (media.length !== 1 || !media[0]?.contentType.startsWith('video/'))
          problems.push({
            code: 'MEDIA_REJECTED',
            rule: 'instagram.reel.media',
            message: 'A reel is exactly one video.',
          });
        // Reels take any ratio (9:16 recommended): the feed ratio does not apply.
        return problems.filter((p) => p.rule !== 'instagram.media.aspect_ratio');
      }
      if (media.length === 1 && !media[0]?.contentType.startsWith('image/'))
        problems.push({
          code: 'MEDIA_REJECTED',
          rule: 'instagram.feed.media_type',
          message:
            'A single feed post is one JPEG image; publish a video as a reel (options.kind "reel").',
        });
      return problems;
    },
    async publish(account, request: PublishRequest, signal): Promise<PublishedPost> {
      const caption = withInvisibleMarker(request.text, request.marker);
      const kind = request.options.kind === 'reel' ? 'reel' : 'feed';
      let creationId: string;
      if (kind === 'reel') {
        const video = request.media[0];
        if (!video) throw rejected('a reel needs one video');
        creationId = await container(
          account,
          {
            media_type: 'REELS',
            video_url: await video.url(),
            caption,
            share_to_feed: request.options.shareToFeed === false ? 'false' : 'true',
          },
          signal,
        );
      } else if (request.media.length === 1) {
        const image = request.media[0]!;
        creationId = await container(account, { image_url: await image.url(), caption }, signal);
      } else {
        const children: string[] = [];
        for (const item of request.media) {
          const video = item.contentType.startsWith('video/');
          const id = await container(
            account,
            video
              ? { media_type: 'VIDEO', video_url: await item.url(), is_carousel_item: 'true' }
              : { image_url: await item.url(), is_carousel_item: 'true' },
            signal,
          );
          if (video) await ready(account, id, signal);
          children.push(id);
        }
        creationId = await container(
          account,
          { media_type: 'CAROUSEL', children: children.join(','), caption },
          signal,
        );
      }
      await ready(account, creationId, signal);
      const published = await call<{ id?: string }>(
        account,
        'POST',
        `/${account.externalId}/media_publish`,
        signal,
        { form: { creation_id: creationId }, publishing: true },
      );
      if (!published.id)
        throw new PlatformError('OUTCOME_UNKNOWN', `${ID}: media_publish answered without an id`, {
          retryable: true,
          action: 'none',
          sent: true,
        });
      return { externalId: published.id, url: await permalink(account, published.id, signal) };
    },
    async findByMarker(account, marker, since, signal) {
      const body = await call<{
        data?: { id: string; caption?: string; permalink?: string; timestamp?: string }[];
      }>(account, 'GET', `/${account.externalId}/media`, signal, {
        query: { fields: 'id,caption,permalink,timestamp', limit: 50 },
      });
      const floor = since.getTime() - 60_000; // the platform's clock may lag ours
      for (const media of body.data ?? []) {
        const at = graphTime(media.timestamp);
        if (at && at.getTime() < floor) continue;
        if (carriesMarker(media.caption, marker))
          return { externalId: media.id, url: media.permalink ?? 'https://www.instagram.com/' };
      }
      return null;
    },
    async deletePost() {
      throw new PlatformError(
        'CONTENT_REJECTED',
        'instagram: the Instagram Graph API does not delete published posts; remove it in the app.',
        { retryable: false, action: 'none', platformCode: 'delete_unsupported' },
      );
    },
    oauth: {
      scopes: SCOPES,
      authorizeUrl: (input) => login.authorizeUrl(input),
      async exchange(input, signal): Promise<ConnectedIdentity[]> {
        const user = await login.userToken(input, signal);
        const pages = await grantedPages(
          http,
          ID,
          ep,
          user.accessToken,
          'id,name,instagram_business_account{id,username,name,profile_picture_url}',
          signal,
        );
        return pages.flatMap((page) => {
          const ig = page.instagram_business_account;
          if (!ig) return [];
          return [
            {
              externalId: ig.id,
              name: ig.name ?? ig.username ?? page.name,
              username: ig.username ?? null,
              avatarUrl: ig.profile_picture_url ?? null,
              // Publishing uses the user's long-lived token; it is renewed by exchanging itself.
              accessToken: user.accessToken,
              refreshToken: null,
              expiresAt: user.expiresAt,
              scopes: SCOPES,
            },
          ];
        });
      },
      refresh: (current, signal) => login.exchangeLongLived(current.accessToken, signal),
    },
  };
}

function unavailable(what: string): PlatformError {
  return new PlatformError('PLATFORM_UNAVAILABLE', `${ID}: ${what}`, {
    retryable: true,
    action: 'retry_later',
  });
}

function rejected(what: string): PlatformError {
  return new PlatformError('MEDIA_REJECTED', `${ID}: ${what}`, {
    retryable: false,
    action: 'edit_post',
  });
}
