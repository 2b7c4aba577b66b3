/**
 * Fake Instagram Graph API, Facebook Pages API and YouTube Data API on one loopback HTTP server,
 * each under its own path prefix, speaking the real APIs' shapes closely enough for the adapters:
 * OAuth consent (approved without a page) and token endpoints (PKCE checked), container create,
 * status and publish, Pages feed and photos, YouTube resumable upload. Failure injection by
 * switches (in process, or `POST /_fake/switches`); `GET /_fake/posts` lists what was published.
 *
 * Prefixes: `/instagram/graph`, `/facebook/graph` (Graph API), `/youtube` (googleapis.com), and
 * `/<platform>/oauth/authorize`, `/<platform>/oauth/token`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { markerTag, trailingMarker } from '../../../src/apps/publishing/platforms/marker.ts';

export type FakePlatformId = 'instagram' | 'facebook' | 'youtube';
export const FAKE_PLATFORM_IDS: readonly FakePlatformId[] = ['instagram', 'facebook', 'youtube'];

/** Failure injection; each applies to its platform's API (or every platform with `'*'`). */
export interface FakeSwitches {
  /** Writes answer 429 with this `Retry-After` (seconds). */
  rateLimited?: number;
  /** Writes answer 503. */
  serverError?: boolean;
  /** The publishing write hangs without creating anything (the client times out). */
  timeoutBeforeCreate?: boolean;
  /** The publishing write creates the post, then hangs (the client times out). */
  timeoutAfterCreate?: boolean;
  /** The publishing write creates the post, then the connection is reset. */
  resetAfterCreate?: boolean;
  /** Every answer waits this long first. */
  slowMs?: number;
  /** The API refuses access tokens as expired (Graph 190/463, Google 401). */
  tokenExpired?: boolean;
  /** The API refuses access tokens as revoked and the token endpoint refuses refreshes (invalid_grant). */
  tokenRevoked?: boolean;
  /** Writes answer the platform's quota error. */
  quotaExhausted?: boolean;
  /** Media is refused (Instagram: the container ends in ERROR). */
  mediaRejected?: boolean;
  /** Writes answer 200 with an error body. */
  errorBody200?: boolean;
  /** Facebook: a write answers "duplicate status message". */
  duplicate?: boolean;
  /** The consent is denied: the authorize endpoint redirects back with `error=access_denied`. */
  consentDenied?: boolean;
  /** Media URLs are fetched (HEAD) as the platforms do; one that fails is refused as media. */
  fetchMedia?: boolean;
  /** Instagram: status polls answer IN_PROGRESS this many times before FINISHED. */
  containerPolls?: number;
  /** Share of publishing writes answered 503 (before creating). */
  transientRate?: number;
  /** Share of publishing writes that create the post, then reset the connection. */
  timeoutAfterCreateRate?: number;
  /** Access tokens issued live this many seconds (default 3600; Graph long-lived: 60 days). */
  tokenTtlS?: number;
  /** Token refreshes answer without a refresh token (Google's usual answer). */
  refreshWithoutRefreshToken?: boolean;
  /** Code exchanges answer without a refresh token (Google on a re-consent without prompt). */
  codeWithoutRefreshToken?: boolean;
}

export interface FakePost {
  id: string;
  platform: FakePlatformId;
  accountId: string;
  text: string;
  title?: string;
  tags?: string[];
  /** The invisible marker or marker tag found on the post (what our adapters attach). */
  markerHash: string | null;
  media: string[];
  createdAt: string;
}

interface TokenGrant {
  platform: FakePlatformId;
  user: string;
  expiresAt: number;
  revoked: boolean;
}

interface Container {
  id: string;
  igUser: string;
  caption: string;
  media: string[];
  type: string;
  children: string[];
  polls: number;
  status: 'IN_PROGRESS' | 'FINISHED' | 'ERROR' | 'PUBLISHED';
  mediaId?: string;
}

export interface FakePlatforms {
  readonly url: string;
  /** The `PUBLISHING_*` settings that point the adapters at the fakes (client ids included). */
  readonly env: Record<string, string>;
  /** Sets switches for one platform or all (`'*'`); merged with those set before. */
  set(platform: FakePlatformId | '*', switches: FakeSwitches): void;
  /** Clears every switch (posts and tokens stay). */
  reset(): void;
  posts(platform?: FakePlatformId): FakePost[];
  /** Marks every token of this fake user revoked (a user removing the app). */
  revokeUser(platform: FakePlatformId, user: string): void;
  /** Requests received per platform and endpoint kind (`token`, `write`, `read`...). */
  readonly counts: Record<string, number>;
  close(): Promise<void>;
}

export const FAKE_CLIENT_SECRET = 'fake-client-secret';
export const fakeClientId = (p: FakePlatformId) => `fake-${p}-client`;

const LONG_LIVED_S = 60 * 24 * 3600;

export async function startFakePlatforms(
  options: { port?: number; host?: string } = {},
): Promise<FakePlatforms> {
  const switches: Record<FakePlatformId, FakeSwitches> = {
    instagram: {},
    facebook: {},
    youtube: {},
  };
  const codes = new Map<
    string,
    {
      platform: FakePlatformId;
      user: string;
      challenge: string;
      redirectUri: string;
      used: boolean;
    }
  >();
  const tokens = new Map<string, TokenGrant>();
  const refreshTokens = new Map<string, TokenGrant>();
  const containers = new Map<string, Container>();
  const uploads = new Map<string, { user: string; meta: Record<string, unknown> }>();
  const posts: FakePost[] = [];
  const counts: Record<string, number> = {};
  const sockets = new Set<Socket>();
  let sequence = 0;
  const nextId = (prefix: string) =>
    `${prefix}${Date.now().toString(36)}${(++sequence).toString(36)}`;

  const server: Server = createServer((req, res) => {
    void handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) json(res, 500, { error: { message: String(error) } });
    });
  });
  server.keepAliveTimeout = 30_000;
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) =>
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve),
  );
  const address = server.address() as AddressInfo;
  const url = `http://${options.host ?? '127.0.0.1'}:${address.port}`;

  function count(key: string): void {
    counts[key] = (counts[key] ?? 0) + 1;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', url);
    const body = await readBody(req);
    const path = u.pathname;
    if (path.startsWith('/_fake/')) return control(req, res, path, body);
    const [, platform, area, ...rest] = path.split('/') as [
      string,
      FakePlatformId,
      string,
      ...string[],
    ];
    if (!FAKE_PLATFORM_IDS.includes(platform)) return json(res, 404, { error: 'unknown platform' });
    const sw = switches[platform];
    if (sw.slowMs) await sleep(sw.slowMs);
    const params = mergeParams(u, req, body);
    if (area === 'oauth' && rest[0] === 'authorize') return authorize(res, platform, params);
    if (area === 'oauth' && rest[0] === 'token') return token(res, platform, params);
    count(`${platform}:api`);
    if (platform === 'youtube') return youtube(req, res, u, [area, ...rest], params, body);
    if (area !== 'graph') return json(res, 404, graphError('Unknown path', 803));
    return graph(req, res, platform, rest, params);
  }

  // ---- OAuth -------------------------------------------------------------------------------

  function authorize(res: ServerResponse, platform: FakePlatformId, p: Params): void {
    count(`${platform}:authorize`);
    const redirect = p.redirect_uri ?? '';
    const back = new URL(redirect);
    if (p.state) back.searchParams.set('state', p.state);
    if (p.client_id !== fakeClientId(platform)) {
      back.searchParams.set('error', 'invalid_client');
    } else if (switches[platform].consentDenied) {
      back.searchParams.set('error', 'access_denied');
      back.searchParams.set('error_description', 'The user denied the request.');
    } else if (p.code_challenge_method !== 'S256' || !p.code_challenge) {
      back.searchParams.set('error', 'invalid_request');
    } else {
      const code = randomToken('code');
      codes.set(code, {
        platform,
        user: p.fake_account ?? nextId('user'),
        challenge: p.code_challenge,
        redirectUri: redirect,
        used: false,
      });
      back.searchParams.set('code', code);
    }
    res.writeHead(302, { location: back.toString() }).end();
  }

  function issue(platform: FakePlatformId, user: string, ttlS: number): string {
    const access = randomToken(`${platform}-at`);
    tokens.set(access, { platform, user, expiresAt: Date.now() + ttlS * 1000, revoked: false });
    return access;
  }

  function token(res: ServerResponse, platform: FakePlatformId, p: Params): void {
    count(`${platform}:token`);
    const sw = switches[platform];
    const graphApi = platform !== 'youtube';
    const fail = (status: number, error: string, description: string) =>
      graphApi
        ? json(res, status, graphError(description, 100, 'OAuthException'))
        : json(res, status, { error, error_description: description });
    if (p.client_id !== fakeClientId(platform) || p.client_secret !== FAKE_CLIENT_SECRET)
      return fail(401, 'invalid_client', 'The OAuth client was not found.');
    const grant = p.grant_type ?? (graphApi ? 'authorization_code' : '');
    const ttl = sw.tokenTtlS ?? 3600;
    if (sw.serverError) {
      if (graphApi)
        return json(res, 503, graphError('Service temporarily unavailable', 2, 'OAuthException'));
      return json(res, 503, {
        error: 'temporarily_unavailable',
        error_description: 'Try again later.',
      });
    }
    if (grant === 'authorization_code') {
      const entry = p.code ? codes.get(p.code) : undefined;
      if (!entry || entry.used || entry.platform !== platform)
        return graphApi
          ? json(
              res,
              400,
              graphError('This authorization code has been used.', 100, 'OAuthException', 36009),
            )
          : fail(400, 'invalid_grant', 'Malformed auth code.');
      entry.used = true;
      if (entry.redirectUri !== p.redirect_uri)
        return fail(400, 'redirect_uri_mismatch', 'Bad Request');
      const challenge = createHash('sha256')
        .update(p.code_verifier ?? '')
        .digest('base64url');
      if (challenge !== entry.challenge)
        return fail(400, 'invalid_grant', 'Invalid code verifier.');
      const access = issue(platform, entry.user, ttl);
      if (graphApi)
        return json(res, 200, { access_token: access, token_type: 'bearer', expires_in: ttl });
      if (sw.codeWithoutRefreshToken)
        return json(res, 200, { access_token: access, expires_in: ttl, token_type: 'Bearer' });
      const refresh = randomToken('yt-rt');
      refreshTokens.set(refresh, {
        platform,
        user: entry.user,
        expiresAt: Number.MAX_SAFE_INTEGER,
        revoked: false,
      });
      return json(res, 200, {
        access_token: access,
        expires_in: ttl,
        refresh_token: refresh,
        scope:
          'https://www.googleapis.com/auth/youtube.upload https://www.googleapis.com/auth/youtube.readonly',
        token_type: 'Bearer',
      });
    }
    if (grant === 'fb_exchange_token' && graphApi) {
      const current = tokens.get(p.fb_exchange_token ?? '');
      if (!current || current.revoked || sw.tokenRevoked || current.expiresAt < Date.now())
        return json(
          res,
          400,
          graphError(
            'Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons.',
            190,
            'OAuthException',
            460,
          ),
        );
      const longTtl = sw.tokenTtlS ?? LONG_LIVED_S;
      return json(res, 200, {
        access_token: issue(platform, current.user, longTtl),
        token_type: 'bearer',
        expires_in: longTtl,
      });
    }
    if (grant === 'refresh_token' && !graphApi) {
      const current = refreshTokens.get(p.refresh_token ?? '');
      if (!current || current.revoked || sw.tokenRevoked)
        return fail(400, 'invalid_grant', 'Token has been expired or revoked.');
      const answer: Record<string, unknown> = {
        access_token: issue(platform, current.user, ttl),
        expires_in: ttl,
        token_type: 'Bearer',
      };
      if (!sw.refreshWithoutRefreshToken) {
        // Google usually answers without one; the switch off rotates it, to test both.
        const refresh = randomToken('yt-rt');
        refreshTokens.set(refresh, { ...current });
        answer.refresh_token = refresh;
      }
      return json(res, 200, answer);
    }
    return fail(400, 'unsupported_grant_type', `Unsupported grant ${grant}`);
  }

  /** The fake user behind a bearer token, or an answer already sent. */
  function authenticate(
    req: IncomingMessage,
    res: ServerResponse,
    platform: FakePlatformId,
    p: Params,
  ): string | null {
    const header = req.headers.authorization ?? '';
    const raw = header.startsWith('Bearer ') ? header.slice(7) : (p.access_token ?? '');
    const grant = tokens.get(raw);
    const sw = switches[platform];
    const graphApi = platform !== 'youtube';
    if (!grant || grant.platform !== platform || grant.revoked || sw.tokenRevoked) {
      if (graphApi)
        json(
          res,
          400,
          graphError(
            'Error validating access token: The user has not authorized application.',
            190,
            'OAuthException',
            458,
          ),
        );
      else json(res, 401, googleError(401, 'Invalid Credentials', 'authError'));
      return null;
    }
    if (grant.expiresAt < Date.now() || sw.tokenExpired) {
      if (graphApi)
        json(
          res,
          400,
          graphError(
            'Error validating access token: Session has expired.',
            190,
            'OAuthException',
            463,
          ),
        );
      else json(res, 401, googleError(401, 'Invalid Credentials', 'authError'));
      return null;
    }
    return grant.user;
  }

  /**
   * The failures injected on a write, answered here (true), or null to go on. `publishing`: the
   * write that makes the post visible (the timeouts and resets apply to it).
   */
  function injected(res: ServerResponse, platform: FakePlatformId, publishing: boolean): boolean {
    const sw = switches[platform];
    const graphApi = platform !== 'youtube';
    if (sw.rateLimited !== undefined) {
      res.setHeader('retry-after', String(sw.rateLimited));
      if (graphApi)
        json(res, 429, graphError('Application request limit reached', 4, 'OAuthException'));
      else json(res, 429, googleError(429, 'Rate Limit Exceeded', 'rateLimitExceeded'));
      return true;
    }
    if (sw.serverError || (publishing && sw.transientRate && Math.random() < sw.transientRate)) {
      if (graphApi)
        json(
          res,
          503,
          graphError(
            'An unexpected error has occurred. Please retry your request later.',
            2,
            'OAuthException',
          ),
        );
      else json(res, 503, googleError(503, 'Backend Error', 'backendError'));
      return true;
    }
    if (sw.quotaExhausted) {
      if (platform === 'instagram')
        json(
          res,
          400,
          graphError(
            'Application request limit reached: the account has reached its limit of published posts.',
            9,
            'OAuthException',
            2207042,
          ),
        );
      else if (platform === 'facebook')
        json(res, 400, graphError('Application limit reached', 341, 'OAuthException'));
      else
        json(
          res,
          403,
          googleError(
            403,
            'The request cannot be completed because you have exceeded your quota.',
            'quotaExceeded',
            'youtube.quota',
          ),
        );
      return true;
    }
    if (sw.errorBody200) {
      if (graphApi)
        json(res, 200, graphError('An unknown error has occurred.', 1, 'OAuthException'));
      else json(res, 200, googleError(500, 'Backend Error', 'backendError'));
      return true;
    }
    if (sw.duplicate && platform === 'facebook') {
      json(res, 400, graphError('Duplicate status message', 506, 'OAuthException'));
      return true;
    }
    if (publishing && sw.timeoutBeforeCreate) {
      hang(res);
      return true;
    }
    return false;
  }

  /** After creating the post: hang or reset when told to; false when answered normally. */
  function afterCreate(res: ServerResponse, platform: FakePlatformId): boolean {
    const sw = switches[platform];
    if (sw.timeoutAfterCreate) {
      hang(res);
      return true;
    }
    if (
      sw.resetAfterCreate ||
      (sw.timeoutAfterCreateRate && Math.random() < sw.timeoutAfterCreateRate)
    ) {
      res.socket?.destroy();
      return true;
    }
    return false;
  }

  function hang(res: ServerResponse): void {
    // Never answered: the client's own time limit ends it (the socket is destroyed at close()).
    res.socket?.setTimeout(0);
  }

  function record(
    platform: FakePlatformId,
    accountId: string,
    text: string,
    media: string[],
    extra: { title?: string; tags?: string[] } = {},
  ): FakePost {
    const id =
      platform === 'facebook'
        ? `${accountId}_${nextId('')}`
        : nextId(platform === 'youtube' ? 'vid' : '17');
    const markerHash =
      platform === 'youtube'
        ? (extra.tags?.find((t) => /^gw[0-9a-f]{16}$/.test(t)) ?? null)
        : trailingMarker(text);
    const post: FakePost = {
      id,
      platform,
      accountId,
      text,
      ...extra,
      markerHash,
      media,
      createdAt: new Date().toISOString(),
    };
    posts.push(post);
    return post;
  }

  // ---- Graph API (Instagram and Facebook Pages) -----------------------------------------------

  async function graph(
    req: IncomingMessage,
    res: ServerResponse,
    platform: FakePlatformId,
    segments: string[],
    p: Params,
  ): Promise<void> {
    const user = authenticate(req, res, platform, p);
    if (user === null) return;
    const method = req.method ?? 'GET';
    const [node, edge] = segments;
    if (node === 'me' && edge === 'accounts') {
      // One Page per fake user, linked to one Instagram professional account.
      const pageToken = issue('facebook', user, 10 * 365 * 24 * 3600);
      return json(res, 200, {
        data: [
          {
            id: `page-${user}`,
            name: `Page of ${user}`,
            access_token: platform === 'facebook' ? pageToken : undefined,
            picture: { data: { url: `https://fake.example/${user}.jpg` } },
            instagram_business_account:
              platform === 'instagram'
                ? {
                    id: `ig-${user}`,
                    username: `ig_${user}`,
                    name: `Instagram of ${user}`,
                    profile_picture_url: `https://fake.example/ig-${user}.jpg`,
                  }
                : undefined,
          },
        ],
      });
    }
    const owns = (id: string | undefined) =>
      id === `ig-${user}` || id === `page-${user}` || (id ?? '').startsWith(`page-${user}_`);
    if (platform === 'instagram') return instagram(res, method, user, node, edge, p, owns);
    return facebook(res, method, user, node, edge, p, owns);
  }

  async function instagram(
    res: ServerResponse,
    method: string,
    user: string,
    node: string | undefined,
    edge: string | undefined,
    p: Params,
    owns: (id: string | undefined) => boolean,
  ): Promise<void> {
    const sw = switches.instagram;
    if (method === 'POST' && edge === 'media') {
      count('instagram:write');
      if (!owns(node))
        return json(
          res,
          400,
          graphError('Unsupported post request.', 100, 'GraphMethodException', 33),
        );
      if (injected(res, 'instagram', false)) return;
      const mediaUrl = p.image_url ?? p.video_url;
      if (sw.fetchMedia && mediaUrl && !(await reachable(mediaUrl)))
        return json(
          res,
          400,
          graphError(
            "Media download has failed.: The media URI doesn't meet our requirements.",
            9004,
            'OAuthException',
            2207052,
          ),
        );
      const type = p.media_type ?? 'IMAGE';
      if (!['IMAGE', 'REELS', 'CAROUSEL', 'VIDEO', 'STORIES'].includes(type) && p.media_type)
        return json(res, 400, graphError('Invalid parameter', 100, 'OAuthException'));
      if (type !== 'CAROUSEL' && !p.image_url && !p.video_url)
        return json(
          res,
          400,
          graphError('The parameter image_url is required', 100, 'OAuthException'),
        );
      const children = (p.children ?? '').split(',').filter((c) => c.length > 0);
      if (type === 'CAROUSEL' && (children.length < 2 || children.length > 10))
        return json(res, 400, graphError('Carousels take 2 to 10 children', 100, 'OAuthException'));
      const container: Container = {
        id: nextId('c'),
        igUser: node ?? '',
        caption: p.caption ?? '',
        media: [p.image_url ?? p.video_url ?? ''].filter((m) => m.length > 0),
        type,
        children,
        polls: 0,
        status: 'IN_PROGRESS',
      };
      containers.set(container.id, container);
      return json(res, 200, { id: container.id });
    }
    if (method === 'POST' && edge === 'media_publish') {
      count('instagram:write');
      if (!owns(node))
        return json(
          res,
          400,
          graphError('Unsupported post request.', 100, 'GraphMethodException', 33),
        );
      if (injected(res, 'instagram', true)) return;
      const container = containers.get(p.creation_id ?? '');
      if (!container || container.igUser !== node)
        return json(
          res,
          400,
          graphError('Media ID is not available', 9007, 'OAuthException', 2207027),
        );
      if (container.status === 'PUBLISHED' && container.mediaId)
        // Publishing a published container again answers the same media (no second post).
        return json(res, 200, { id: container.mediaId });
      if (container.status !== 'FINISHED')
        return json(
          res,
          400,
          graphError('Media ID is not available', 9007, 'OAuthException', 2207027),
        );
      const media =
        container.type === 'CAROUSEL'
          ? container.children.flatMap((c) => containers.get(c)?.media ?? [])
          : container.media;
      const post = record('instagram', node ?? '', container.caption, media);
      container.status = 'PUBLISHED';
      container.mediaId = post.id;
      if (afterCreate(res, 'instagram')) return;
      return json(res, 200, { id: post.id });
    }
    if (method === 'GET' && edge === 'media') {
      if (!owns(node))
        return json(
          res,
          400,
          graphError('Unsupported get request.', 100, 'GraphMethodException', 33),
        );
      const mine = posts
        .filter((x) => x.platform === 'instagram' && x.accountId === node)
        .reverse()
        .slice(0, Number(p.limit ?? 25));
      return json(res, 200, {
        data: mine.map((x) => ({
          id: x.id,
          caption: x.text,
          timestamp: x.createdAt.replace('Z', '+0000'),
          permalink: `https://www.instagram.com/p/${x.id}/`,
        })),
      });
    }
    if (method === 'GET' && node && !edge) {
      const container = containers.get(node);
      if (container) {
        if (!owns(container.igUser))
          return json(
            res,
            400,
            graphError('Unsupported get request.', 100, 'GraphMethodException', 33),
          );
        if (container.status === 'IN_PROGRESS') {
          container.polls += 1;
          if (sw.mediaRejected) container.status = 'ERROR';
          else if (container.polls > (sw.containerPolls ?? 0)) container.status = 'FINISHED';
        }
        return json(res, 200, {
          id: container.id,
          status_code: container.status,
          ...(container.status === 'ERROR'
            ? { status: 'Error: Media upload has failed with error code 2207026' }
            : {}),
        });
      }
      const post = posts.find((x) => x.platform === 'instagram' && x.id === node);
      if (post && owns(post.accountId))
        return json(res, 200, {
          id: post.id,
          caption: post.text,
          permalink: `https://www.instagram.com/p/${post.id}/`,
        });
      return json(
        res,
        400,
        graphError(
          `Unsupported get request. Object with ID '${node}' does not exist`,
          100,
          'GraphMethodException',
          33,
        ),
      );
    }
    return json(res, 400, graphError('Unknown path components', 2500, 'OAuthException'));
  }

  async function facebook(
    res: ServerResponse,
    method: string,
    user: string,
    node: string | undefined,
    edge: string | undefined,
    p: Params,
    owns: (id: string | undefined) => boolean,
  ): Promise<void> {
    const sw = switches.facebook;
    if (method === 'POST' && (edge === 'feed' || edge === 'photos' || edge === 'videos')) {
      count('facebook:write');
      if (!owns(node))
        return json(res, 403, graphError('(#200) Permissions error', 200, 'OAuthException'));
      // An unpublished photo (published=false) is an upload for a later feed post, not a post.
      const unpublishedPhoto = edge === 'photos' && p.published === 'false';
      if (injected(res, 'facebook', !unpublishedPhoto)) return;
      if (edge !== 'feed' && sw.mediaRejected)
        return json(res, 400, graphError('Invalid image type', 324, 'OAuthException', 2069019));
      const mediaUrl = p.url ?? p.file_url;
      if (sw.fetchMedia && mediaUrl && !(await reachable(mediaUrl)))
        return json(
          res,
          400,
          graphError('(#324) Missing or invalid image file', 324, 'OAuthException'),
        );
      if (edge !== 'feed' && !p.url && !p.file_url)
        return json(res, 400, graphError('(#324) Requires upload file', 324, 'OAuthException'));
      if (edge === 'feed' && !p.message && !p.link && !p.attached_media)
        return json(
          res,
          400,
          graphError('(#100) Missing message or attachment', 100, 'OAuthException'),
        );
      if (unpublishedPhoto) {
        const id = nextId('ph');
        containers.set(id, {
          id,
          igUser: node ?? '',
          caption: '',
          media: [p.url ?? ''],
          type: 'PHOTO',
          children: [],
          polls: 0,
          status: 'FINISHED',
        });
        return json(res, 200, { id });
      }
      let media = [p.url ?? p.file_url ?? ''].filter((m) => m.length > 0);
      if (p.attached_media) {
        const attached = JSON.parse(p.attached_media) as { media_fbid: string }[];
        media = attached.flatMap((a) => containers.get(a.media_fbid)?.media ?? []);
      }
      const post = record(
        'facebook',
        node ?? '',
        p.message ?? p.caption ?? p.description ?? '',
        media,
      );
      if (afterCreate(res, 'facebook')) return;
      if (edge === 'photos') return json(res, 200, { id: nextId('ph'), post_id: post.id });
      if (edge === 'videos') return json(res, 200, { id: post.id });
      return json(res, 200, { id: post.id });
    }
    if (method === 'GET' && (edge === 'feed' || edge === 'published_posts')) {
      if (!owns(node))
        return json(res, 403, graphError('(#200) Permissions error', 200, 'OAuthException'));
      const mine = posts
        .filter((x) => x.platform === 'facebook' && x.accountId === node)
        .reverse()
        .slice(0, Number(p.limit ?? 25));
      return json(res, 200, {
        data: mine.map((x) => ({
          id: x.id,
          message: x.text,
          created_time: x.createdAt.replace('Z', '+0000'),
          permalink_url: `https://www.facebook.com/${x.id}`,
        })),
      });
    }
    if (method === 'DELETE' && node && !edge) {
      count('facebook:write');
      const at = posts.findIndex((x) => x.platform === 'facebook' && x.id === node);
      const found = posts[at];
      if (!found || !owns(found.accountId))
        return json(
          res,
          400,
          graphError(
            `Unsupported delete request. Object with ID '${node}' does not exist`,
            100,
            'GraphMethodException',
            33,
          ),
        );
      posts.splice(at, 1);
      return json(res, 200, { success: true });
    }
    return json(res, 400, graphError('Unknown path components', 2500, 'OAuthException'));
  }

  // ---- YouTube Data API v3 ------------------------------------------------------------------

  function youtube(
    req: IncomingMessage,
    res: ServerResponse,
    u: URL,
    segments: string[],
    p: Params,
    body: Buffer,
  ): void {
    const user = authenticate(req, res, 'youtube', p);
    if (user === null) return;
    const method = req.method ?? 'GET';
    const route = segments.join('/');
    const channel = `UC${user}`;
    if (route === 'upload/youtube/v3/videos' && method === 'POST') {
      count('youtube:write');
      if (injected(res, 'youtube', false)) return;
      if (u.searchParams.get('uploadType') !== 'resumable')
        return json(res, 400, googleError(400, 'Unsupported upload type', 'badRequest'));
      let meta: Record<string, unknown>;
      try {
        meta = JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>;
      } catch {
        return json(res, 400, googleError(400, 'Parse Error', 'parseError'));
      }
      const snippet = (meta.snippet ?? {}) as { title?: string };
      if (!snippet.title)
        return json(
          res,
          400,
          googleError(
            400,
            'The request metadata does not specify a valid video title.',
            'invalidTitle',
          ),
        );
      const uploadId = nextId('up');
      uploads.set(uploadId, { user, meta });
      res.setHeader(
        'location',
        `${url}/youtube/upload/youtube/v3/videos?uploadType=resumable&upload_id=${uploadId}`,
      );
      return json(res, 200, {});
    }
    if (route === 'upload/youtube/v3/videos' && method === 'PUT') {
      count('youtube:write');
      const session = uploads.get(u.searchParams.get('upload_id') ?? '');
      if (!session || session.user !== user)
        return json(res, 404, googleError(404, 'Upload session not found', 'notFound'));
      if (injected(res, 'youtube', true)) return;
      if (switches.youtube.mediaRejected || body.length === 0)
        return json(
          res,
          400,
          googleError(
            400,
            'The video file could not be processed: invalid video format.',
            'invalidVideoFormat',
          ),
        );
      uploads.delete(u.searchParams.get('upload_id') ?? '');
      const snippet = (session.meta.snippet ?? {}) as {
        title?: string;
        description?: string;
        tags?: string[];
      };
      const post = record('youtube', channel, snippet.description ?? '', [`${body.length} bytes`], {
        title: snippet.title ?? '',
        tags: snippet.tags ?? [],
      });
      if (afterCreate(res, 'youtube')) return;
      return json(res, 200, {
        kind: 'youtube#video',
        id: post.id,
        snippet: { ...snippet, channelId: channel },
        status: session.meta.status ?? {},
      });
    }
    if (route === 'youtube/v3/channels' && method === 'GET') {
      return json(res, 200, {
        items: [
          {
            id: channel,
            snippet: {
              title: `Channel of ${user}`,
              customUrl: `@${user}`,
              thumbnails: { default: { url: `https://fake.example/${user}.jpg` } },
            },
            contentDetails: { relatedPlaylists: { uploads: `UU${user}` } },
          },
        ],
      });
    }
    if (route === 'youtube/v3/playlistItems' && method === 'GET') {
      const mine = posts
        .filter((x) => x.platform === 'youtube' && x.accountId === channel)
        .reverse()
        .slice(0, Number(p.maxResults ?? 5));
      return json(res, 200, {
        items: mine.map((x) => ({
          snippet: { title: x.title, publishedAt: x.createdAt, resourceId: { videoId: x.id } },
          contentDetails: { videoId: x.id, videoPublishedAt: x.createdAt },
        })),
      });
    }
    if (route === 'youtube/v3/videos' && method === 'GET') {
      const ids = (p.id ?? '').split(',');
      const found = posts.filter(
        (x) => x.platform === 'youtube' && ids.includes(x.id) && x.accountId === channel,
      );
      return json(res, 200, {
        items: found.map((x) => ({
          id: x.id,
          snippet: { title: x.title, description: x.text, tags: x.tags, publishedAt: x.createdAt },
        })),
      });
    }
    if (route === 'youtube/v3/videos' && method === 'DELETE') {
      count('youtube:write');
      const at = posts.findIndex(
        (x) => x.platform === 'youtube' && x.id === p.id && x.accountId === channel,
      );
      if (at < 0) return json(res, 404, googleError(404, 'Video not found', 'videoNotFound'));
      posts.splice(at, 1);
      res.writeHead(204).end();
      return;
    }
    return json(res, 404, googleError(404, 'Not Found', 'notFound'));
  }

  // ---- Control API --------------------------------------------------------------------------

  function control(req: IncomingMessage, res: ServerResponse, path: string, body: Buffer): void {
    if (path === '/_fake/posts' && req.method === 'GET') {
      const byPlatform: Record<string, FakePost[]> = { instagram: [], facebook: [], youtube: [] };
      for (const post of posts) byPlatform[post.platform]?.push(post);
      return json(res, 200, byPlatform);
    }
    if (path === '/_fake/switches' && req.method === 'POST') {
      const input = JSON.parse(body.toString('utf8') || '{}') as {
        platform?: FakePlatformId | '*';
        switches?: FakeSwitches;
        reset?: boolean;
      };
      if (input.reset) api.reset();
      api.set(input.platform ?? '*', input.switches ?? {});
      return json(res, 200, switches);
    }
    if (path === '/_fake/switches' && req.method === 'GET') return json(res, 200, switches);
    if (path === '/_fake/counts' && req.method === 'GET') return json(res, 200, counts);
    if (path === '/_fake/reset' && req.method === 'POST') {
      api.reset();
      posts.length = 0;
      return json(res, 200, {});
    }
    return json(res, 404, { error: 'unknown control path' });
  }

  const env: Record<string, string> = { FAKE_PLATFORMS_URL: url };
  for (const p of FAKE_PLATFORM_IDS) {
    const P = p.toUpperCase();
    env[`PUBLISHING_${P}_CLIENT_ID`] = fakeClientId(p);
    env[`PUBLISHING_${P}_CLIENT_SECRET`] = FAKE_CLIENT_SECRET;
    env[`PUBLISHING_${P}_API_URL`] = p === 'youtube' ? `${url}/youtube` : `${url}/${p}/graph`;
    env[`PUBLISHING_${P}_AUTH_URL`] = `${url}/${p}/oauth/authorize`;
    env[`PUBLISHING_${P}_TOKEN_URL`] = `${url}/${p}/oauth/token`;
  }

  const api: FakePlatforms = {
    url,
    env,
    counts,
    set(platform, next) {
      for (const p of platform === '*' ? FAKE_PLATFORM_IDS : [platform])
        switches[p] = { ...switches[p], ...next };
    },
    reset() {
      for (const p of FAKE_PLATFORM_IDS) switches[p] = {};
    },
    posts(platform) {
      return posts.filter((x) => !platform || x.platform === platform).map((x) => ({ ...x }));
    },
    revokeUser(platform, user) {
      for (const grant of [...tokens.values(), ...refreshTokens.values()])
        if (grant.platform === platform && grant.user === user) grant.revoked = true;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return api;
}

// ---- helpers ----------------------------------------------------------------------------------

type Params = Record<string, string | undefined>;

function mergeParams(u: URL, req: IncomingMessage, body: Buffer): Params {
  const out: Params = Object.fromEntries(u.searchParams);
  const type = req.headers['content-type'] ?? '';
  if (type.startsWith('application/x-www-form-urlencoded'))
    Object.assign(out, Object.fromEntries(new URLSearchParams(body.toString('utf8'))));
  else if (type.startsWith('application/json') && !u.pathname.startsWith('/youtube/')) {
    try {
      const parsed = JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>;
      for (const [k, v] of Object.entries(parsed))
        out[k] = typeof v === 'string' ? v : JSON.stringify(v);
    } catch {
      // The handler answers the missing parameters.
    }
  }
  return out;
}

/** Whether a media URL answers 2xx to HEAD (the platforms fetch media from it). */
async function reachable(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { method: 'HEAD', signal: AbortSignal.timeout(5_000) });
    return res.ok;
  } catch {
    return false;
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=UTF-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

function graphError(message: string, code: number, type = 'OAuthException', subcode?: number) {
  return {
    error: {
      message,
      type,
      code,
      ...(subcode ? { error_subcode: subcode } : {}),
      fbtrace_id: randomBytes(8).toString('hex'),
    },
  };
}

function googleError(code: number, message: string, reason: string, domain = 'global') {
  return { error: { code, message, errors: [{ message, domain, reason }] } };
}

function randomToken(prefix: string): string {
  return `${prefix}-${randomBytes(18).toString('base64url')}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The marker tag the YouTube adapter attaches (exported for tests that count duplicates). */
export { markerTag };
