/**
 * Facebook Pages through the Graph API: text and links on `/{page-id}/feed`, one photo on
 * `/{page-id}/photos`, several as unpublished photos attached to a feed post, one video on
 * `/{page-id}/videos`; each with the Page's access token (from `/me/accounts` at consent).
 */
import { Type } from 'typebox';
import { FacebookLogin, graphCall, graphTime, grantedPages } from './graph.ts';
import type { PlatformHttp } from './http.ts';
import { carriesMarker, MARKER_LENGTH, withInvisibleMarker } from './marker.ts';
import type { ConnectableAdapter, ConnectedIdentity, PlatformEndpoints } from './oauth.ts';
import { checkRules, DAY_MS, MB } from './rules.ts';
import {
  PlatformError,
  type AccountCredentials,
  type ContentRules,
  type PublishedPost,
} from './types.ts';

const ID = 'facebook';
const SCOPES = ['pages_show_list', 'pages_read_engagement', 'pages_manage_posts'];

/** Post text up to 63,206 characters; up to 10 photos (JPEG, PNG, GIF: 10 MiB) or one video. */
export const facebookRules: ContentRules = {
  maxTextLength: 63_206 - MARKER_LENGTH,
  minMedia: 0,
  maxMedia: 10,
  mediaTypes: ['image/jpeg', 'image/png', 'image/gif', 'video/mp4', 'video/quicktime'],
  maxImageBytes: 10 * MB,
  maxVideoBytes: 1024 * MB,
  aspectRatio: null,
  maxVideoDurationS: 4 * 3600,
  mixedMedia: false,
};

export const FacebookOptions = Type.Object(
  {
    link: Type.Optional(
      Type.String({
        format: 'uri',
        maxLength: 2048,
        description: 'A link shared with a text post (no media).',
      }),
    ),
  },
  { additionalProperties: false },
);

export function createFacebook(http: PlatformHttp, ep: PlatformEndpoints): ConnectableAdapter {
  const login = new FacebookLogin(http, ep, ID, SCOPES);
  const write = <T>(
    account: AccountCredentials,
    edge: string,
    form: Record<string, string | undefined>,
    signal: AbortSignal,
    publishing: boolean,
  ) =>
    graphCall<T>(http, ID, {
      method: 'POST',
      url: `${ep.apiUrl}/${account.externalId}/${edge}`,
      headers: { authorization: `Bearer ${account.accessToken}` },
      form,
      signal,
      timeoutMs: publishing && edge === 'videos' ? ep.uploadTimeoutMs : ep.timeoutMs,
      publishing,
    });
  const url = (id: string) => `https://www.facebook.com/${id}`;

  return {
    id: ID,
    displayName: 'Facebook Pages',
    rules: facebookRules,
    quotas: [
      {
        endpoint: 'api',
        limit: 4_800,
        periodMs: DAY_MS,
        description:
          'Pages API: 4,800 calls × the Page’s engaged users per 24 h (Business Use Case limit); declared for one engaged user.',
      },
    ],
    optionsSchema: FacebookOptions,
    validate: (content) => {
      const problems = checkRules(ID, facebookRules, content);
      const videos = content.media.filter((m) => m.contentType.startsWith('video/')).length;
      if (videos > 1 || (videos === 1 && content.media.length > 1))
        problems.push({
          code: 'MEDIA_REJECTED',
          rule: 'facebook.video.count',
          message: 'A Page post takes one video, alone.',
        });
      if (content.text.trim() === '' && content.media.length === 0)
        problems.push({
          code: 'CONTENT_REJECTED',
          rule: 'facebook.empty',
          message: 'A Page post needs text or media.',
        });
      if (content.options.link !== undefined && content.media.length > 0)
        problems.push({
          code: 'CONTENT_REJECTED',
          rule: 'facebook.link.with_media',
          message: 'A link is shared with a text post only, not with media.',
        });
      return problems;
    },
    async publish(account, request, signal): Promise<PublishedPost> {
      const message = withInvisibleMarker(request.text, request.marker);
      const media = request.media;
      if (media.length === 0) {
        const body = await write<{ id?: string }>(
          account,
          'feed',
          {
            message,
            link: typeof request.options.link === 'string' ? request.options.link : undefined,
          },
          signal,
          true,
        );
        return done(body.id);
      }
      const first = media[0]!;
      if (first.contentType.startsWith('video/')) {
        const body = await write<{ id?: string }>(
          account,
          'videos',
          { file_url: await first.url(), description: message },
          signal,
          true,
        );
        return done(body.id);
      }
      if (media.length === 1) {
        const body = await write<{ id?: string; post_id?: string }>(
          account,
          'photos',
          { url: await first.url(), message },
          signal,
          true,
        );
        return done(body.post_id ?? body.id);
      }
      // Several photos: uploaded unpublished (nothing visible yet), then one feed post.
      const ids: string[] = [];
      for (const photo of media) {
        const body = await write<{ id?: string }>(
          account,
          'photos',
          { url: await photo.url(), published: 'false' },
          signal,
          false,
        );
        if (!body.id) throw unavailable('no photo id in the answer');
        ids.push(body.id);
      }
      const body = await write<{ id?: string }>(
        account,
        'feed',
        { message, attached_media: JSON.stringify(ids.map((id) => ({ media_fbid: id }))) },
        signal,
        true,
      );
      return done(body.id);
    },
    async findByMarker(account, marker, since, signal) {
      const body = await graphCall<{
        data?: { id: string; message?: string; created_time?: string; permalink_url?: string }[];
      }>(http, ID, {
        method: 'GET',
        url: `${ep.apiUrl}/${account.externalId}/published_posts`,
        query: { fields: 'id,message,created_time,permalink_url', limit: 50 },
        headers: { authorization: `Bearer ${account.accessToken}` },
        signal,
        timeoutMs: ep.timeoutMs,
      });
      const floor = since.getTime() - 60_000;
      for (const post of body.data ?? []) {
        const at = graphTime(post.created_time);
        if (at && at.getTime() < floor) continue;
        if (carriesMarker(post.message, marker))
          return { externalId: post.id, url: post.permalink_url ?? url(post.id) };
      }
      return null;
    },
    async deletePost(account, externalId, signal) {
      await graphCall<{ success?: boolean }>(http, ID, {
        method: 'DELETE',
        url: `${ep.apiUrl}/${encodeURIComponent(externalId)}`,
        headers: { authorization: `Bearer ${account.accessToken}` },
        signal,
        timeoutMs: ep.timeoutMs,
      });
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
          'id,name,access_token,picture{url}',
          signal,
        );
        return pages.flatMap((page) =>
          page.access_token
            ? [
                {
                  externalId: page.id,
                  name: page.name,
                  username: null,
                  avatarUrl: page.picture?.data?.url ?? null,
                  // A Page token got from a long-lived user token does not expire.
                  accessToken: page.access_token,
                  refreshToken: null,
                  expiresAt: null,
                  scopes: SCOPES,
                },
              ]
            : [],
        );
      },
      refresh: (current, signal) => login.exchangeLongLived(current.accessToken, signal),
    },
  };

  function done(id: string | undefined): PublishedPost {
    if (!id)
      throw new PlatformError('OUTCOME_UNKNOWN', `${ID}: the write answered without a post id`, {
        retryable: true,
        action: 'none',
        sent: true,
      });
    return { externalId: id, url: url(id) };
  }
}

function unavailable(what: string): PlatformError {
  return new PlatformError('PLATFORM_UNAVAILABLE', `${ID}: ${what}`, {
    retryable: true,
    action: 'retry_later',
  });
}
