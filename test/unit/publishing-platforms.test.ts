// The platform adapters against the fake platforms: publishing, lookup by marker, and the
// mapping of every failure switch to its typed PlatformError (code, retryable, action, sent); the
// content rules (validate) and the token sealing.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, beforeEach, describe, test } from 'node:test';
import { TokenKeys } from '../../src/apps/publishing/accounts/token-keys.ts';
import { buildAdapters } from '../../src/apps/publishing/platforms/index.ts';
import { invisibleMarker } from '../../src/apps/publishing/platforms/marker.ts';
import type { ConnectableAdapter } from '../../src/apps/publishing/platforms/oauth.ts';
import {
  PlatformError,
  type AccountCredentials,
  type PlatformId,
  type PublishMedia,
  type PublishRequest,
} from '../../src/apps/publishing/platforms/types.ts';
import type { PublishingSettings } from '../../src/apps/publishing/settings.ts';
import { startFakePlatforms, type FakePlatforms } from '../fakes/social/server.ts';
import { publishingTestConfig } from '../helpers/publishing.ts';

let fakes: FakePlatforms;
let adapters: Map<PlatformId, ConnectableAdapter>;
const REDIRECT = 'https://app.example.test/api/v1/publishing/accounts/callback/x';

before(async () => {
  fakes = await startFakePlatforms();
  const config = publishingTestConfig(fakes, {
    PUBLISHING_HTTP_TIMEOUT_MS: '1500',
    PUBLISHING_UPLOAD_TIMEOUT_MS: '2000',
  });
  adapters = buildAdapters(config.modules.publishing as PublishingSettings);
});
after(async () => {
  await fakes?.close();
});
beforeEach(() => fakes.reset());

const adapter = (id: PlatformId) => adapters.get(id)!;
const signal = () => AbortSignal.timeout(10_000);
let accounts = 0;

/** Consent and code exchange straight against the fake: the identity as credentials. */
async function connect(
  id: PlatformId,
): Promise<AccountCredentials & { refreshToken: string | null; user: string }> {
  accounts += 1;
  const user = `unit${process.pid}x${accounts}`;
  const a = adapter(id);
  const verifier = 'v'.repeat(50);
  const { createHash } = await import('node:crypto');
  const url = new URL(
    a.oauth.authorizeUrl({
      state: 's',
      codeChallenge: createHash('sha256').update(verifier).digest('base64url'),
      redirectUri: REDIRECT,
    }),
  );
  url.searchParams.set('fake_account', user);
  const back = await fetch(url, { redirect: 'manual' });
  const code = new URL(back.headers.get('location') ?? '').searchParams.get('code') ?? '';
  const [identity] = await a.oauth.exchange(
    { code, codeVerifier: verifier, redirectUri: REDIRECT },
    signal(),
  );
  assert.ok(identity);
  return {
    accountId: `acct-${accounts}`,
    platform: id,
    externalId: identity.externalId,
    accessToken: identity.accessToken,
    refreshToken: identity.refreshToken,
    user,
  };
}

function media(contentType: string, bytes = 1024): PublishMedia {
  return {
    fileId: `f${Math.random()}`,
    contentType,
    size: bytes,
    width: 1080,
    height: 1080,
    url: async () => `https://media.example.test/${contentType.replace('/', '.')}`,
    open: async () => Readable.from([Buffer.alloc(bytes, 1)]),
  };
}

const requestFor = (id: PlatformId, marker: string): PublishRequest => ({
  marker,
  text: `hello from ${id} ${marker}`,
  media: id === 'youtube' ? [media('video/mp4')] : id === 'instagram' ? [media('image/jpeg')] : [],
  options: id === 'youtube' ? { title: 'A title' } : {},
});

async function rejects(promise: Promise<unknown>): Promise<PlatformError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof PlatformError, `not a PlatformError: ${String(error)}`);
    return error;
  }
  assert.fail('resolved where a PlatformError was expected');
}

const PLATFORMS: PlatformId[] = ['instagram', 'facebook', 'youtube'];

for (const id of PLATFORMS) {
  describe(`${id} adapter`, () => {
    test('publishes once, with our marker, and finds the post by it', async () => {
      const account = await connect(id);
      const marker = `m-${id}-ok`;
      const since = new Date();
      const post = await adapter(id).publish(account, requestFor(id, marker), signal());
      const mine = fakes.posts(id).filter((p) => p.id === post.externalId);
      assert.equal(mine.length, 1);
      assert.ok(post.url.startsWith('https://'));
      if (id !== 'youtube') assert.ok(mine[0]!.text.endsWith(invisibleMarker(marker)));
      const found = await adapter(id).findByMarker(account, marker, since, signal());
      assert.equal(found?.externalId, post.externalId);
      assert.equal(await adapter(id).findByMarker(account, 'another', since, signal()), null);
    });

    test('429 with Retry-After: PLATFORM_RATE_LIMITED, retryable, with the wait', async () => {
      const account = await connect(id);
      fakes.set(id, { rateLimited: 7 });
      const e = await rejects(adapter(id).publish(account, requestFor(id, 'm-429'), signal()));
      assert.equal(e.code, 'PLATFORM_RATE_LIMITED');
      assert.equal(e.retryable, true);
      assert.equal(e.retryAfterMs, 7000);
      assert.equal(e.sent, false);
    });

    test('5xx: PLATFORM_UNAVAILABLE, retryable; sent only when it answered the publishing call', async () => {
      const account = await connect(id);
      fakes.set(id, { serverError: true });
      const e = await rejects(adapter(id).publish(account, requestFor(id, 'm-5xx'), signal()));
      assert.equal(e.code, 'PLATFORM_UNAVAILABLE');
      assert.equal(e.retryable, true);
      // Facebook's feed write is the publishing call itself: a 5xx there may follow the post.
      assert.equal(e.sent, id === 'facebook');
      assert.equal(e.action, 'retry_later');
    });

    test('HTTP 200 with an error body is a failure, never a success', async () => {
      const account = await connect(id);
      const before = fakes.posts(id).length;
      fakes.set(id, { errorBody200: true });
      const e = await rejects(adapter(id).publish(account, requestFor(id, 'm-200'), signal()));
      assert.equal(e.code, 'PLATFORM_UNAVAILABLE');
      assert.equal(e.retryable, true);
      assert.equal(fakes.posts(id).length, before);
    });

    test('timeout before the post is created: OUTCOME_UNKNOWN (sent), and the lookup finds nothing', async () => {
      const account = await connect(id);
      const since = new Date();
      fakes.set(id, { timeoutBeforeCreate: true });
      const e = await rejects(adapter(id).publish(account, requestFor(id, 'm-tb'), signal()));
      assert.equal(e.code, 'OUTCOME_UNKNOWN');
      assert.equal(e.sent, true);
      assert.equal(e.retryable, true);
      fakes.reset();
      assert.equal(await adapter(id).findByMarker(account, 'm-tb', since, signal()), null);
    });

    test('timeout after the post is created: OUTCOME_UNKNOWN (sent), and the lookup finds the post', async () => {
      const account = await connect(id);
      const since = new Date();
      fakes.set(id, { timeoutAfterCreate: true });
      const e = await rejects(adapter(id).publish(account, requestFor(id, 'm-ta'), signal()));
      assert.equal(e.code, 'OUTCOME_UNKNOWN');
      assert.equal(e.sent, true);
      fakes.reset();
      const found = await adapter(id).findByMarker(account, 'm-ta', since, signal());
      assert.ok(found, 'the post made before the timeout is found by its marker');
    });

    test('connection reset after the post is created: OUTCOME_UNKNOWN (sent)', async () => {
      const account = await connect(id);
      fakes.set(id, { resetAfterCreate: true });
      const e = await rejects(adapter(id).publish(account, requestFor(id, 'm-rst'), signal()));
      assert.equal(e.code, 'OUTCOME_UNKNOWN');
      assert.equal(e.sent, true);
    });

    test('slow answers past the time limit on a read: PLATFORM_UNAVAILABLE, not sent', async () => {
      const account = await connect(id);
      fakes.set(id, { slowMs: 4_000 });
      const e = await rejects(adapter(id).findByMarker(account, 'm', new Date(), signal()));
      assert.equal(e.code, 'PLATFORM_UNAVAILABLE');
      assert.equal(e.sent, false);
    });

    test('expired and revoked tokens: ACCOUNT_REAUTH_REQUIRED, reconnect', async () => {
      for (const sw of [{ tokenExpired: true }, { tokenRevoked: true }]) {
        fakes.reset();
        const account = await connect(id);
        fakes.set(id, sw);
        const e = await rejects(adapter(id).publish(account, requestFor(id, 'm-tok'), signal()));
        assert.equal(e.code, 'ACCOUNT_REAUTH_REQUIRED', JSON.stringify(sw));
        assert.equal(e.action, 'reconnect_account');
        assert.equal(e.retryable, false);
      }
    });

    test('quota exhausted: PLATFORM_QUOTA_EXHAUSTED, retryable', async () => {
      const account = await connect(id);
      fakes.set(id, { quotaExhausted: true });
      const e = await rejects(adapter(id).publish(account, requestFor(id, 'm-q'), signal()));
      assert.equal(e.code, 'PLATFORM_QUOTA_EXHAUSTED');
      assert.equal(e.retryable, true);
      if (id === 'youtube')
        assert.ok((e.retryAfterMs ?? 0) > 0, 'until the Pacific midnight reset');
    });

    test('refused connection: PLATFORM_UNAVAILABLE, not sent', async () => {
      const account = await connect(id);
      const config = publishingTestConfig(fakes, {
        [`PUBLISHING_${id.toUpperCase()}_API_URL`]: 'http://127.0.0.1:9/nothing',
      });
      const offline = buildAdapters(config.modules.publishing as PublishingSettings).get(id)!;
      const e = await rejects(offline.publish(account, requestFor(id, 'm-off'), signal()));
      assert.equal(e.code, 'PLATFORM_UNAVAILABLE');
      assert.equal(e.sent, false);
    });
  });
}

describe('platform-specific failures', () => {
  test('instagram: a container ending in ERROR is MEDIA_REJECTED, not retryable', async () => {
    const account = await connect('instagram');
    fakes.set('instagram', { mediaRejected: true });
    const e = await rejects(
      adapter('instagram').publish(account, requestFor('instagram', 'm-mr'), signal()),
    );
    assert.equal(e.code, 'MEDIA_REJECTED');
    assert.equal(e.retryable, false);
    assert.equal(e.action, 'edit_post');
  });

  test('instagram: a container still processing is polled until FINISHED; a carousel publishes once', async () => {
    const account = await connect('instagram');
    fakes.set('instagram', { containerPolls: 3 });
    const post = await adapter('instagram').publish(
      account,
      {
        marker: 'm-car',
        text: 'carousel',
        media: [media('image/jpeg'), media('image/jpeg'), media('video/mp4')],
        options: {},
      },
      signal(),
    );
    const mine = fakes.posts('instagram').filter((p) => p.id === post.externalId);
    assert.equal(mine.length, 1);
    assert.equal(mine[0]!.media.length, 3);
  });

  test('facebook: photos and a duplicate status', async () => {
    const account = await connect('facebook');
    const photo = await adapter('facebook').publish(
      account,
      {
        marker: 'm-ph',
        text: 'photos',
        media: [media('image/jpeg'), media('image/png')],
        options: {},
      },
      signal(),
    );
    assert.equal(fakes.posts('facebook').find((p) => p.id === photo.externalId)?.media.length, 2);
    fakes.set('facebook', { duplicate: true });
    const e = await rejects(
      adapter('facebook').publish(account, requestFor('facebook', 'm-dup'), signal()),
    );
    assert.equal(e.code, 'DUPLICATE_CONTENT');
    assert.equal(e.retryable, false);
    fakes.reset();
    fakes.set('facebook', { mediaRejected: true });
    const m = await rejects(
      adapter('facebook').publish(
        account,
        { marker: 'm-mr', text: 'x', media: [media('image/jpeg')], options: {} },
        signal(),
      ),
    );
    assert.equal(m.code, 'MEDIA_REJECTED');
    fakes.reset();
    await adapter('facebook').deletePost(account, photo.externalId, signal());
    assert.equal(
      fakes.posts('facebook').find((p) => p.id === photo.externalId),
      undefined,
    );
  });

  test('youtube: an unprocessable video is MEDIA_REJECTED; delete removes a video', async () => {
    const account = await connect('youtube');
    fakes.set('youtube', { mediaRejected: true });
    const e = await rejects(
      adapter('youtube').publish(account, requestFor('youtube', 'm-mr'), signal()),
    );
    assert.equal(e.code, 'MEDIA_REJECTED');
    fakes.reset();
    const post = await adapter('youtube').publish(
      account,
      requestFor('youtube', 'm-del'),
      signal(),
    );
    await adapter('youtube').deletePost(account, post.externalId, signal());
    assert.equal(
      fakes.posts('youtube').find((p) => p.id === post.externalId),
      undefined,
    );
  });

  test('youtube refresh: a new access token; no refresh token in the answer stays null; revoked is reauth', async () => {
    const account = await connect('youtube');
    assert.ok(account.refreshToken);
    fakes.set('youtube', { refreshWithoutRefreshToken: true });
    const renewed = await adapter('youtube').oauth.refresh(account, signal());
    assert.notEqual(renewed.accessToken, account.accessToken);
    assert.equal(renewed.refreshToken, null);
    fakes.set('youtube', { tokenRevoked: true });
    const e = await rejects(adapter('youtube').oauth.refresh(account, signal()));
    assert.equal(e.code, 'ACCOUNT_REAUTH_REQUIRED');
  });

  test('graph refresh exchanges the long-lived token; a revoked one is reauth', async () => {
    const account = await connect('instagram');
    const renewed = await adapter('instagram').oauth.refresh(account, signal());
    assert.ok(
      renewed.expiresAt && renewed.expiresAt.getTime() > Date.now() + 50 * 24 * 3600 * 1000,
    );
    fakes.revokeUser('instagram', account.user);
    const e = await rejects(adapter('instagram').oauth.refresh(account, signal()));
    assert.equal(e.code, 'ACCOUNT_REAUTH_REQUIRED');
  });

  test('a replayed authorization code is refused as ACCOUNT_REAUTH_REQUIRED (youtube and graph)', async () => {
    for (const id of ['youtube', 'facebook'] as const) {
      const a = adapter(id);
      const { createHash } = await import('node:crypto');
      const verifier = 'w'.repeat(50);
      const url = new URL(
        a.oauth.authorizeUrl({
          state: 's',
          codeChallenge: createHash('sha256').update(verifier).digest('base64url'),
          redirectUri: REDIRECT,
        }),
      );
      const back = await fetch(url, { redirect: 'manual' });
      const code = new URL(back.headers.get('location') ?? '').searchParams.get('code') ?? '';
      await a.oauth.exchange({ code, codeVerifier: verifier, redirectUri: REDIRECT }, signal());
      const e = await rejects(
        a.oauth.exchange({ code, codeVerifier: verifier, redirectUri: REDIRECT }, signal()),
      );
      assert.equal(e.code, 'ACCOUNT_REAUTH_REQUIRED', id);
    }
  });
});

interface MediaInfo {
  contentType: string;
  size: number;
  width: number | null;
  height: number | null;
  durationS: number | null;
}

describe('content rules (validate)', () => {
  const image = (w = 1080, h = 1080, type = 'image/jpeg'): MediaInfo => ({
    contentType: type,
    size: 1000,
    width: w,
    height: h,
    durationS: null,
  });
  const video = (s = 30): MediaInfo => ({
    contentType: 'video/mp4',
    size: 1000,
    width: 1080,
    height: 1920,
    durationS: s,
  });
  const rules = (
    id: PlatformId,
    content: {
      text?: string;
      media?: MediaInfo[];
      options?: Record<string, unknown>;
    },
  ) =>
    adapter(id)
      .validate({
        text: content.text ?? 'x',
        media: content.media ?? [],
        options: content.options ?? {},
      })
      .map((p) => p.rule);

  test('instagram: caption at the limit passes, one over fails; a video as a feed image; 11 images; aspect ratio; PNG', () => {
    const max = adapter('instagram').rules.maxTextLength;
    assert.deepEqual(rules('instagram', { text: 'a'.repeat(max), media: [image()] }), []);
    assert.deepEqual(rules('instagram', { text: 'a'.repeat(max + 1), media: [image()] }), [
      'instagram.text.max_length',
    ]);
    assert.ok(rules('instagram', { media: [video()] }).includes('instagram.feed.media_type'));
    assert.deepEqual(rules('instagram', { media: [video()], options: { kind: 'reel' } }), []);
    assert.ok(
      rules('instagram', { media: Array.from({ length: 11 }, () => image()) }).includes(
        'instagram.media.max_count',
      ),
    );
    assert.deepEqual(rules('instagram', { media: Array.from({ length: 10 }, () => image()) }), []);
    assert.deepEqual(rules('instagram', { media: [image(1080, 1500)] }), [
      'instagram.media.aspect_ratio',
    ]);
    assert.deepEqual(rules('instagram', { media: [image(1080, 1350)] }), [], '4:5 is the bound');
    assert.deepEqual(rules('instagram', { media: [image(1080, 1080, 'image/png')] }), [
      'instagram.media.type',
    ]);
    assert.deepEqual(rules('instagram', { media: [] }), ['instagram.media.min_count']);
  });

  test('youtube: title of 101 characters, description over 5,000, a video required', () => {
    assert.deepEqual(
      rules('youtube', { media: [video()], options: { title: 't'.repeat(100) } }),
      [],
    );
    assert.ok(
      rules('youtube', { media: [video()], options: { title: 't'.repeat(101) } }).includes(
        'youtube.title.max_length',
      ),
    );
    assert.deepEqual(rules('youtube', { text: 'd'.repeat(5_001), media: [video()] }), [
      'youtube.text.max_length',
    ]);
    assert.deepEqual(rules('youtube', { media: [] }), ['youtube.media.min_count']);
    assert.deepEqual(rules('youtube', { media: [image()] }), ['youtube.media.type']);
  });

  test('facebook: text alone is fine; images and a video do not mix', () => {
    assert.deepEqual(rules('facebook', { text: 'hello' }), []);
    assert.ok(rules('facebook', { media: [image(), video()] }).includes('facebook.media.mixed'));
    assert.deepEqual(rules('facebook', { text: '', media: [] }), ['facebook.empty']);
  });

  test('every adapter declares its quotas and an options schema that refuses unknown options', () => {
    for (const id of PLATFORMS) {
      const a = adapter(id);
      assert.ok(a.quotas.length > 0);
      assert.equal(
        (a.optionsSchema as { additionalProperties?: unknown }).additionalProperties,
        false,
      );
    }
    const ig = adapter('instagram').quotas.find((q) => q.endpoint === 'publish');
    assert.equal(ig?.limit, 100);
    assert.equal(ig?.periodMs, 24 * 3600 * 1000);
  });
});

describe('token sealing', () => {
  const key = (byte: number) => Buffer.alloc(32, byte);
  test('sealed text names its key; old keys open, the current one seals; contexts bind', () => {
    const old = new TokenKeys([{ kid: 'k1', key: key(1) }]);
    const sealed = old.seal('secret-token', 'acct:access');
    assert.match(sealed, /^v1\.k1\./);
    assert.ok(!sealed.includes('secret-token'));
    const rotated = new TokenKeys([
      { kid: 'k2', key: key(2) },
      { kid: 'k1', key: key(1) },
    ]);
    assert.equal(rotated.open(sealed, 'acct:access'), 'secret-token');
    assert.equal(rotated.isStale(sealed), true);
    assert.match(rotated.seal('x', 'c'), /^v1\.k2\./);
    assert.throws(() => rotated.open(sealed, 'other:access'), 'moved to another row: refused');
    assert.throws(
      () => new TokenKeys([{ kid: 'k2', key: key(2) }]).open(sealed, 'acct:access'),
      /unknown key/,
    );
    const tampered = `${sealed.slice(0, -2)}${sealed.endsWith('A') ? 'B' : 'A'}A`;
    assert.throws(() => rotated.open(tampered, 'acct:access'));
  });

  test('PUBLISHING_TOKEN_KEYS parses kid:base64 pairs; empty derives one key from APP_SECRET', () => {
    const a = TokenKeys.fromSettings('', 'x'.repeat(40));
    const b = TokenKeys.fromSettings('', 'x'.repeat(40));
    assert.equal(a.currentKid, 'app');
    assert.equal(b.open(a.seal('t', 'c'), 'c'), 't');
    const keys = TokenKeys.fromSettings(
      `new:${key(3).toString('base64')},old:${key(4).toString('base64url')}`,
      'unused',
    );
    assert.equal(keys.currentKid, 'new');
    const oldOnly = new TokenKeys([{ kid: 'old', key: key(4) }]);
    assert.equal(keys.open(oldOnly.seal('t', 'c'), 'c'), 't');
  });
});

describe('probabilistic failure modes (the benchmark’s)', () => {
  test('transientRate 1 answers every publishing write 503; timeoutAfterCreateRate 1 creates, then resets', async () => {
    const account = await connect('facebook');
    fakes.set('facebook', { transientRate: 1 });
    const before = fakes.posts('facebook').length;
    const transient = await rejects(
      adapter('facebook').publish(account, requestFor('facebook', 'm-rate'), signal()),
    );
    assert.equal(transient.code, 'PLATFORM_UNAVAILABLE');
    assert.equal(fakes.posts('facebook').length, before, 'nothing made');
    fakes.reset();
    fakes.set('facebook', { timeoutAfterCreateRate: 1 });
    const since = new Date();
    const unknown = await rejects(
      adapter('facebook').publish(account, requestFor('facebook', 'm-rate2'), signal()),
    );
    assert.equal(unknown.code, 'OUTCOME_UNKNOWN');
    assert.equal(fakes.posts('facebook').length, before + 1, 'made once');
    fakes.reset();
    assert.ok(await adapter('facebook').findByMarker(account, 'm-rate2', since, signal()));
  });
});

describe('media fetched like the platforms do (fetchMedia)', () => {
  test('a media URL that does not answer is MEDIA_REJECTED on Instagram and Facebook; one that does publishes', async () => {
    const { createServer } = await import('node:http');
    const media200 = createServer((_req, res) =>
      res.writeHead(200, { 'content-type': 'image/jpeg' }).end(),
    );
    await new Promise<void>((resolve) => media200.listen(0, '127.0.0.1', resolve));
    const port = (media200.address() as { port: number }).port;
    try {
      for (const id of ['instagram', 'facebook'] as const) {
        const account = await connect(id);
        fakes.set(id, { fetchMedia: true });
        const bad: PublishMedia = {
          ...media('image/jpeg'),
          url: async () => 'http://127.0.0.1:9/missing.jpg',
        };
        const e = await rejects(
          adapter(id).publish(
            account,
            { marker: `m-fm-${id}`, text: 'x', media: [bad], options: {} },
            signal(),
          ),
        );
        assert.equal(e.code, 'MEDIA_REJECTED', id);
        const good: PublishMedia = {
          ...media('image/jpeg'),
          url: async () => `http://127.0.0.1:${port}/a.jpg`,
        };
        const post = await adapter(id).publish(
          account,
          { marker: `m-fm2-${id}`, text: 'x', media: [good], options: {} },
          signal(),
        );
        assert.ok(post.externalId);
      }
    } finally {
      media200.close();
    }
  });
});

describe('error mapping tables (platform answers not reachable through the fakes’ switches)', () => {
  const answer = (status: number, body: unknown, headers: Record<string, string> = {}) => ({
    status,
    headers,
    body,
  });
  const graph = (code: number, subcode?: number, extra: Record<string, unknown> = {}) => ({
    error: { message: 'm', type: 'OAuthException', code, error_subcode: subcode, ...extra },
  });

  test('Graph API codes', async () => {
    const { graphFailure } = await import('../../src/apps/publishing/platforms/graph.ts');
    const cases: [number, unknown, string, boolean][] = [
      [400, graph(190, 460), 'ACCOUNT_REAUTH_REQUIRED', false],
      [403, graph(10), 'ACCOUNT_REAUTH_REQUIRED', false],
      [403, graph(200), 'ACCOUNT_REAUTH_REQUIRED', false],
      [400, graph(17), 'PLATFORM_RATE_LIMITED', true],
      [400, graph(32), 'PLATFORM_RATE_LIMITED', true],
      [400, graph(613), 'PLATFORM_RATE_LIMITED', true],
      [400, graph(80001), 'PLATFORM_RATE_LIMITED', true],
      [400, graph(9, 2207042), 'PLATFORM_QUOTA_EXHAUSTED', true],
      [400, graph(506), 'DUPLICATE_CONTENT', false],
      [400, graph(36003), 'MEDIA_REJECTED', false],
      [400, graph(9004, 2207052), 'MEDIA_REJECTED', false],
      [400, graph(100, 2207026), 'MEDIA_REJECTED', false],
      [400, graph(100, undefined, { is_transient: true }), 'PLATFORM_UNAVAILABLE', true],
      [500, graph(1), 'PLATFORM_UNAVAILABLE', true],
      [502, null, 'PLATFORM_UNAVAILABLE', true],
      [400, graph(100), 'CONTENT_REJECTED', false],
    ];
    for (const [status, body, code, retryable] of cases) {
      const e = graphFailure('instagram', answer(status, body));
      assert.equal(e.code, code, JSON.stringify(body));
      assert.equal(e.retryable, retryable, JSON.stringify(body));
    }
    const limited = graphFailure('facebook', answer(400, graph(4), { 'retry-after': '120' }));
    assert.equal(limited.retryAfterMs, 120_000);
    assert.equal(limited.platformCode, '4');
  });

  test('Google API reasons; the daily quota waits until midnight Pacific time', async () => {
    const { googleFailure, untilQuotaReset } =
      await import('../../src/apps/publishing/platforms/youtube.ts');
    const google = (code: number, reason: string) => ({
      error: { code, message: 'm', errors: [{ reason, domain: 'youtube' }] },
    });
    const cases: [number, unknown, string][] = [
      [401, google(401, 'authError'), 'ACCOUNT_REAUTH_REQUIRED'],
      [
        400,
        { error: 'invalid_grant', error_description: 'Bad Request' },
        'ACCOUNT_REAUTH_REQUIRED',
      ],
      [403, google(403, 'insufficientPermissions'), 'ACCOUNT_REAUTH_REQUIRED'],
      [403, google(403, 'userRateLimitExceeded'), 'PLATFORM_RATE_LIMITED'],
      [400, google(400, 'uploadLimitExceeded'), 'PLATFORM_QUOTA_EXHAUSTED'],
      [400, google(400, 'invalidTitle'), 'CONTENT_REJECTED'],
      [400, google(400, 'invalidVideoFormat'), 'MEDIA_REJECTED'],
      [200, google(503, 'backendError'), 'PLATFORM_UNAVAILABLE'],
      [503, null, 'PLATFORM_UNAVAILABLE'],
    ];
    for (const [status, body, code] of cases)
      assert.equal(googleFailure(answer(status, body)).code, code, JSON.stringify(body));
    const { DateTime } = await import('luxon');
    // 23:00 in Los Angeles is one hour before the reset, on a DST change day too.
    for (const iso of ['2026-03-08T23:00:00', '2026-11-01T23:00:00', '2026-07-01T23:00:00'])
      assert.equal(
        untilQuotaReset(DateTime.fromISO(iso, { zone: 'America/Los_Angeles' })),
        3_600_000,
        iso,
      );
  });

  test('Retry-After as seconds or an HTTP date', async () => {
    const { retryAfterMs } = await import('../../src/apps/publishing/platforms/http.ts');
    assert.equal(retryAfterMs({ 'retry-after': '30' }), 30_000);
    const date = new Date(Date.now() + 60_000).toUTCString();
    const ms = retryAfterMs({ 'retry-after': date }) ?? 0;
    assert.ok(ms > 55_000 && ms <= 60_000, String(ms));
    assert.equal(retryAfterMs({}), undefined);
    assert.equal(retryAfterMs({ 'retry-after': 'soon' }), undefined);
  });

  test('the invisible marker: 25 characters, found at the end of the text, distinct per marker', async () => {
    const { invisibleMarker, carriesMarker, trailingMarker, withInvisibleMarker, MARKER_LENGTH } =
      await import('../../src/apps/publishing/platforms/marker.ts');
    const a = invisibleMarker('target-a');
    assert.equal(a.length, MARKER_LENGTH);
    const invisible = new Set(['\u2063', '\u200b', '\u200c', '\u200d', '\u2060']);
    assert.ok([...a].every((c) => invisible.has(c)));
    assert.notEqual(a, invisibleMarker('target-b'));
    const text = withInvisibleMarker('Hello', 'target-a');
    assert.ok(carriesMarker(text, 'target-a'));
    assert.ok(!carriesMarker(text, 'target-b'));
    assert.ok(!carriesMarker(undefined, 'target-a'));
    assert.equal(trailingMarker(text), a);
    assert.equal(trailingMarker('no marker'), null);
  });
});
