// The publishing pipeline end to end: the real app with workers, the real adapters, accounts
// connected through OAuth, and the fake platforms (test/fakes/social) with their failure switches.
// A post is scheduled a moment ahead, its jobs run when due, and what the fakes received is counted
// (`fakes.posts()`): each target must be there exactly once.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { jpeg, multipart } from '../fixtures/files/samples.ts';
import { assertProblem } from '../helpers/problem.ts';
import {
  connectFakeAccount,
  PUBLISHING_PREFIX,
  startPublishingHarness,
  type ConnectedAccount,
  type PublishingHarness,
} from '../helpers/publishing.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface TargetJson {
  id: string;
  accountId: string;
  platform: string;
  status: string;
  attempts: number;
  externalId: string | null;
  url: string | null;
  error: { code: string; message: string; retryable: boolean; action: string } | null;
}
interface PostJson {
  id: string;
  status: string;
  targets: TargetJson[];
}

let h: PublishingHarness;
let dir: string;
let user: Awaited<ReturnType<PublishingHarness['user']>>;
const accounts: Record<string, ConnectedAccount> = {};
let imageId: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gw-pub-e2e-'));
  h = await startPublishingHarness({
    work: true,
    overrides: {
      STORAGE_LOCAL_DIR: dir,
      PUBLISHING_RETRY_INITIAL: '1s',
      PUBLISHING_RETRY_MAX: '2s',
      PUBLISHING_MAX_ATTEMPTS: '3',
      PUBLISHING_BREAKER_FAILURES: '50',
      // Long enough that a busy machine never turns a 503 into a timeout (an unknown outcome).
      PUBLISHING_HTTP_TIMEOUT_MS: '4000',
    },
  });
  user = await h.user();
  for (const p of ['instagram', 'facebook', 'youtube'] as const)
    accounts[p] = await connectFakeAccount(h.app, user.token, p);
  const form = multipart([
    { name: 'purpose', data: 'publishing.media' },
    { name: 'file', filename: 'a.jpg', contentType: 'image/jpeg', data: await jpeg(400, 400) },
  ]);
  const up = await h.app.inject({
    method: 'POST',
    url: '/api/v1/files',
    headers: { ...user.headers, 'content-type': form.contentType },
    payload: form.body,
  });
  assert.equal(up.statusCode, 201, up.body);
  imageId = up.json<{ id: string }>().id;
});
after(async () => {
  await h?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});
afterEach(() => h.fakes.reset());

const soon = (ms = 1500) => new Date(Date.now() + ms).toISOString();

async function schedule(platform: 'instagram' | 'facebook', text: string): Promise<PostJson> {
  const res = await h.app.inject({
    method: 'POST',
    url: `${PUBLISHING_PREFIX}/posts`,
    headers: user.headers,
    payload: {
      text,
      mediaFileIds: platform === 'instagram' ? [imageId] : [],
      targets: [{ accountId: accounts[platform]?.id }],
      scheduledAt: soon(),
      timeZone: 'Europe/Berlin',
    },
  });
  assert.equal(res.statusCode, 201, res.body);
  return res.json<PostJson>();
}

/** The post once every target is settled (published, failed, cancelled), or after `timeoutMs`. */
async function settled(id: string, timeoutMs = 20_000): Promise<PostJson> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const res = await h.app.inject({
      method: 'GET',
      url: `${PUBLISHING_PREFIX}/posts/${id}`,
      headers: user.headers,
    });
    const post = res.json<PostJson>();
    if (post.targets.every((t) => ['published', 'failed', 'cancelled'].includes(t.status)))
      return post;
    if (Date.now() > until) throw new Error(`post not settled: ${res.body}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

const onFake = (text: string) => h.fakes.posts().filter((p) => p.text.includes(text));

describe('publishing end to end', () => {
  test('a scheduled post is published when due, once, with the platform’s id and URL', async () => {
    const text = `hello ${Date.now()}`;
    const post = await schedule('facebook', text);
    const done = await settled(post.id);
    const t = done.targets[0] as TargetJson;
    assert.equal(t.status, 'published', JSON.stringify(t));
    assert.equal(onFake(text).length, 1);
    assert.equal(t.externalId, onFake(text)[0]?.id);
    assert.ok(t.url);
  });

  test('Instagram: container, status polls, publish: once', async () => {
    h.fakes.set('instagram', { containerPolls: 2 });
    const text = `ig ${Date.now()}`;
    const done = await settled((await schedule('instagram', text)).id);
    assert.equal(done.targets[0]?.status, 'published', JSON.stringify(done.targets[0]));
    assert.equal(onFake(text).length, 1);
  });

  test('a timeout after the platform created the post: found by marker, never posted twice', async () => {
    h.fakes.set('facebook', { timeoutAfterCreate: true });
    const text = `lost answer ${Date.now()}`;
    const post = await schedule('facebook', text);
    // Let the first attempt time out, then let the platform answer again.
    const until = Date.now() + 15_000;
    while (onFake(text).length === 0 && Date.now() < until)
      await new Promise((r) => setTimeout(r, 100));
    assert.equal(onFake(text).length, 1, 'the first call created the post');
    await new Promise((r) => setTimeout(r, 2000));
    h.fakes.reset();
    const done = await settled(post.id, 30_000);
    const t = done.targets[0] as TargetJson;
    assert.equal(t.status, 'published', JSON.stringify(t));
    assert.equal(onFake(text).length, 1, 'exactly once on the platform');
    assert.equal(t.externalId, onFake(text)[0]?.id);
  });

  test('a platform answering 200 with an error body: never taken for a success, failed with a typed error', async () => {
    h.fakes.set('facebook', { errorBody200: true });
    const text = `error body ${Date.now()}`;
    const done = await settled((await schedule('facebook', text)).id, 30_000);
    const t = done.targets[0] as TargetJson;
    assert.equal(t.status, 'failed', JSON.stringify(t));
    assert.equal(t.externalId, null);
    // Graph's "unknown error" is transient by its documentation: retried, then failed for good.
    assert.equal(t.error?.code, 'PLATFORM_UNAVAILABLE', JSON.stringify(t.error));
    assert.match(t.error?.message ?? '', /unknown error/i);
    assert.equal(t.attempts, 3);
    assert.equal(onFake(text).length, 0);
  });

  test('429 with Retry-After: waits for it, then published once', async () => {
    h.fakes.set('facebook', { rateLimited: 1 });
    const text = `limited ${Date.now()}`;
    const post = await schedule('facebook', text);
    await new Promise((r) => setTimeout(r, 2500));
    h.fakes.reset();
    const done = await settled(post.id, 20_000);
    assert.equal(done.targets[0]?.status, 'published', JSON.stringify(done.targets[0]));
    assert.equal(onFake(text).length, 1);
  });

  test('transient 5xx until the last attempt: failed for good with PLATFORM_UNAVAILABLE and the reason', async () => {
    h.fakes.set('facebook', { serverError: true });
    const text = `down ${Date.now()}`;
    const done = await settled((await schedule('facebook', text)).id, 30_000);
    const t = done.targets[0] as TargetJson;
    assert.equal(t.status, 'failed', JSON.stringify(t));
    assert.equal(t.error?.code, 'PLATFORM_UNAVAILABLE');
    assert.equal(t.error?.action, 'retry_later');
    // Three calls; a 5xx to the publishing call may have made the post, so a fourth run only
    // looked it up (not there) before failing for good.
    assert.equal(t.attempts, 3);
    assert.equal(onFake(text).length, 0);
  });

  test('a revoked token: the target paused with ACCOUNT_REAUTH_REQUIRED, the account marked', async () => {
    const account = await connectFakeAccount(h.app, user.token, 'facebook');
    h.fakes.set('facebook', { tokenRevoked: true });
    const res = await h.app.inject({
      method: 'POST',
      url: `${PUBLISHING_PREFIX}/posts`,
      headers: user.headers,
      payload: {
        text: `revoked ${Date.now()}`,
        targets: [{ accountId: account.id }],
        scheduledAt: soon(),
        timeZone: 'UTC',
      },
    });
    assert.equal(res.statusCode, 201, res.body);
    const done = await settled(res.json<PostJson>().id);
    const t = done.targets[0] as TargetJson;
    assert.equal(t.status, 'failed', JSON.stringify(t));
    assert.equal(t.error?.code, 'ACCOUNT_REAUTH_REQUIRED');
    assert.equal(t.error?.action, 'reconnect_account');
    // The account is marked right after the target is paused (the accounts half's transaction).
    const accountStatus = async () =>
      (
        await h.app.inject({
          method: 'GET',
          url: `${PUBLISHING_PREFIX}/accounts/${account.id}`,
          headers: user.headers,
        })
      ).json<ConnectedAccount>().status;
    const until = Date.now() + 10_000;
    while ((await accountStatus()) !== 'reauth_required' && Date.now() < until)
      await new Promise((r) => setTimeout(r, 100));
    assert.equal(await accountStatus(), 'reauth_required');
    // Scheduling another post to it is refused until it is reconnected.
    const again = await h.app.inject({
      method: 'POST',
      url: `${PUBLISHING_PREFIX}/posts`,
      headers: user.headers,
      payload: {
        text: 'x',
        targets: [{ accountId: account.id }],
        scheduledAt: soon(60_000),
        timeZone: 'UTC',
      },
    });
    assertProblem(again, 422, 'POST_ACCOUNT_REAUTH_REQUIRED');
  });
});
