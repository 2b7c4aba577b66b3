// The publishing app's posts half against real PostgreSQL: the /posts routes through HTTP, and the
// pipeline (publishTarget, the sweep, the hooks) run directly, one job run at a time, against a
// scripted fake adapter and fake accounts (the accounts half's real adapters and fake platforms
// drive test/integration/publishing-publish.test.ts). Every job run here is what a worker would
// run for the job the routes enqueued: the payload is read from pgboss.job.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { buildApp, enabledModules } from '../../src/app.ts';
import { allMigrations } from '../../src/migrations/index.ts';
import type { Config } from '../../src/platform/config/index.ts';
import { withTransaction } from '../../src/platform/db/index.ts';
import { defineModule, type Platform } from '../../src/platform/modules/index.ts';
import { createPlatform } from '../../src/platform/runtime/index.ts';
import { accountsMigrations } from '../../src/apps/publishing/accounts/index.ts';
import {
  createPostHooks,
  postEvents,
  postFilePurposes,
  postJobs,
  postMailTemplates,
  postPermissions,
  postsMigrations,
  publishTarget,
  registerPostRoutes,
  startPosts,
  sweepExpiredClaims,
} from '../../src/apps/publishing/posts/index.ts';
import { postsConfig } from '../../src/apps/publishing/posts/settings.ts';
import {
  PlatformError,
  type AccountRef,
  type ContentProblem,
  type PlatformAdapter,
  type PlatformId,
  type PublishedPost,
  type PublishingAccounts,
} from '../../src/apps/publishing/platforms/types.ts';
import type { PublishingRuntime } from '../../src/apps/publishing/runtime.ts';
import type { PublishingSettings } from '../../src/apps/publishing/settings.ts';
import { multipart, png } from '../fixtures/files/samples.ts';
import { LogCapture, testConfig } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { bearer, createUser, signIn } from '../helpers/identity.ts';
import { assertProblem } from '../helpers/problem.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const MAX_TEXT = 50;

/** A scripted platform: records what it published by marker; each call takes the next script step. */
class FakeAdapter implements PlatformAdapter {
  readonly id: PlatformId;
  readonly displayName: string;
  readonly rules = {
    maxTextLength: MAX_TEXT,
    minMedia: 0,
    maxMedia: 10,
    mediaTypes: ['image/png', 'image/jpeg', 'video/mp4'],
    maxImageBytes: 8 * 1024 * 1024,
    maxVideoBytes: 100 * 1024 * 1024,
    aspectRatio: null,
    maxVideoDurationS: null,
    mixedMedia: false,
  };
  quotas: { endpoint: 'publish'; limit: number; periodMs: number; description: string }[] = [];
  readonly optionsSchema = Type.Object(
    { mediaType: Type.Optional(Type.Union([Type.Literal('feed'), Type.Literal('reel')])) },
    { additionalProperties: false },
  );
  /** What the platform holds: marker → post. */
  readonly posts = new Map<string, PublishedPost>();
  publishCalls: string[] = [];
  lookupCalls: string[] = [];
  /** Next outcomes of publish: 'ok', an error, or 'created-then-timeout'. */
  script: (PlatformError | 'ok' | 'created-then-timeout')[] = [];

  constructor(id: PlatformId) {
    this.id = id;
    this.displayName = id;
  }

  validate(content: Parameters<PlatformAdapter['validate']>[0]): ContentProblem[] {
    const problems: ContentProblem[] = [];
    if ([...content.text].length > this.rules.maxTextLength)
      problems.push({
        code: 'CONTENT_REJECTED',
        rule: `${this.id}.text.max_length`,
        message: `at most ${this.rules.maxTextLength} characters`,
      });
    if (content.media.length > this.rules.maxMedia)
      problems.push({
        code: 'MEDIA_REJECTED',
        rule: `${this.id}.media.max_count`,
        message: `at most ${this.rules.maxMedia} media`,
      });
    const feed = (content.options.mediaType ?? 'feed') === 'feed';
    if (
      this.id === 'instagram' &&
      feed &&
      content.media.some((m) => m.contentType.startsWith('video/'))
    )
      problems.push({
        code: 'MEDIA_REJECTED',
        rule: 'instagram.feed.images_only',
        message: 'a feed post takes images; publish a video as a reel',
      });
    return problems;
  }

  async publish(_account: unknown, request: { marker: string }): Promise<PublishedPost> {
    this.publishCalls.push(request.marker);
    const step = this.script.shift() ?? 'ok';
    if (step instanceof PlatformError) throw step;
    const post = {
      externalId: `ext-${this.posts.size + 1}`,
      url: `https://${this.id}.test/p/${this.posts.size + 1}`,
    };
    this.posts.set(request.marker, post);
    if (step === 'created-then-timeout')
      throw new PlatformError('OUTCOME_UNKNOWN', 'timed out after sending', {
        retryable: true,
        action: 'retry_later',
        sent: true,
      });
    return post;
  }

  async findByMarker(_account: unknown, marker: string): Promise<PublishedPost | null> {
    this.lookupCalls.push(marker);
    return this.posts.get(marker) ?? null;
  }

  async deletePost(): Promise<void> {}
}

const unavailable = () =>
  new PlatformError('PLATFORM_UNAVAILABLE', '503 from the platform', {
    retryable: true,
    action: 'retry_later',
  });

interface Harness {
  config: Config;
  tdb: TestDatabase;
  platform: Platform;
  app: FastifyInstance;
  rt: PublishingRuntime;
  adapters: Map<PlatformId, FakeAdapter>;
  reauthCalls: string[];
  dir: string;
}

/** The posts half mounted as the publishing module, with fake adapters and accounts. */
async function startHarness(overrides: Record<string, string> = {}): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'gw-pub-'));
  const adapters = new Map<PlatformId, FakeAdapter>(
    (['instagram', 'facebook', 'youtube'] as const).map((p) => [p, new FakeAdapter(p)]),
  );
  const reauthCalls: string[] = [];
  const runtimes = new WeakMap<Platform, PublishingRuntime>();
  const runtimeOf = (platform: Platform): PublishingRuntime => {
    const existing = runtimes.get(platform);
    if (existing) return existing;
    const settings = platform.config.modules.publishing as PublishingSettings;
    const hooks = createPostHooks(platform, settings);
    const accounts: PublishingAccounts = {
      async ownedBy(db, userId, ids) {
        const found = new Map<string, AccountRef>();
        if (ids.length === 0) return found;
        const rows = await platform.database.pool.query<
          AccountRef & { user_id: string; external_id: string }
        >(
          `select id, user_id, platform, external_id, name, status from publishing_account
           where user_id = $1 and id = any($2::uuid[]) and deleted_at is null`,
          [userId, ids],
        );
        void db;
        for (const r of rows.rows)
          found.set(r.id, { ...r, userId: r.user_id, externalId: r.external_id });
        return found;
      },
      async credentials(accountId) {
        const { rows } = await platform.database.pool.query<{
          status: string;
          platform: PlatformId;
        }>('select status, platform from publishing_account where id = $1', [accountId]);
        if (rows[0]?.status !== 'active')
          throw new PlatformError('ACCOUNT_REAUTH_REQUIRED', 'reconnect', {
            retryable: false,
            action: 'reconnect_account',
          });
        return { accountId, platform: rows[0].platform, externalId: 'ext', accessToken: 'token' };
      },
      async requireReauth(accountId) {
        reauthCalls.push(accountId);
        await withTransaction(platform.database.db, async (trx) => {
          await platform.database.pool.query(
            `update publishing_account set status = 'reauth_required' where id = $1`,
            [accountId],
          );
          await hooks.onReauthRequired(trx, accountId);
        });
      },
    };
    const rt: PublishingRuntime = { platform, settings, adapters, accounts, hooks };
    runtimes.set(platform, rt);
    return rt;
  };
  const module = defineModule({
    name: 'publishing',
    description: 'Publishing, posts half (tests).',
    dependsOn: ['identity', 'events', 'files'],
    config: Type.Object(postsConfig),
    prefix: '/api/v1/publishing',
    migrations: { ...accountsMigrations, ...postsMigrations },
    permissions: postPermissions,
    events: postEvents,
    mailTemplates: postMailTemplates,
    filePurposes: postFilePurposes,
    jobs: ({ config }) => postJobs(config as PublishingSettings),
    routes: async (app, { platform }) => registerPostRoutes(app, runtimeOf(platform)),
    onStart: async ({ platform }) => startPosts(runtimeOf(platform)),
  });
  const config = testConfig(
    {
      STORAGE_LOCAL_DIR: dir,
      PUBLISHING_BREAKER_FAILURES: '3',
      PUBLISHING_MAX_ATTEMPTS: '3',
      ...overrides,
    },
    [module],
  );
  const tdb = await createTestDatabase({ config, migrations: allMigrations([module]) });
  // Files' workers run (documents are ready at once); no publish worker: the tests run each job.
  const platform = await createPlatform(config, {
    modules: enabledModules(config, [module]),
    database: tdb.database,
    redis: null,
    work: false,
    logDestination: new LogCapture(),
  });
  const app = await buildApp(config, { platform, apps: [module] });
  await app.ready();
  return { config, tdb, platform, app, rt: runtimeOf(platform), adapters, reauthCalls, dir };
}

const HOUR = 3_600_000;
const iso = (ms: number) => new Date(Date.now() + ms).toISOString();
const log = { info() {}, warn() {}, error() {} } as never;
const ctx = () => ({ signal: new AbortController().signal, log });

interface TargetJson {
  id: string;
  accountId: string;
  platform: string;
  status: string;
  attempts: number;
  nextAttemptAt: string | null;
  publishedAt: string | null;
  externalId: string | null;
  url: string | null;
  error: { code: string; message: string; retryable: boolean; action: string } | null;
}
interface PostJson {
  id: string;
  status: string;
  text: string;
  scheduledAt: string | null;
  scheduledAtLocal: string | null;
  timeZone: string;
  targets: TargetJson[];
}

describe('publishing posts', () => {
  let h: Harness;
  let headers: Record<string, string>;
  let userId: string;
  let otherHeaders: Record<string, string>;
  let otherId: string;
  let ig: string;
  let fb: string;
  let yt: string;
  let otherIg: string;

  const q = async <T = Record<string, unknown>>(text: string, values: unknown[] = []) =>
    (await h.tdb.database.pool.query(text, values)).rows as T[];

  async function account(owner: string, platform: PlatformId, status = 'active'): Promise<string> {
    const [row] = await q<{ id: string }>(
      `insert into publishing_account (id, user_id, platform, external_id, name, status)
       values (gen_random_uuid(), $1, $2, gen_random_uuid()::text, $2 || ' account', $3) returning id`,
      [owner, platform, status],
    );
    return (row as { id: string }).id;
  }

  const create = (
    body: Record<string, unknown>,
    hdrs = headers,
    extra: Record<string, string> = {},
  ) =>
    h.app.inject({
      method: 'POST',
      url: '/api/v1/publishing/posts',
      headers: { ...hdrs, ...extra },
      payload: body,
    });
  const scheduledBody = (
    accountIds: string[],
    at = iso(HOUR),
    more: Record<string, unknown> = {},
  ) => ({
    text: 'Hello',
    targets: accountIds.map((accountId) => ({ accountId })),
    scheduledAt: at,
    timeZone: 'Europe/Berlin',
    ...more,
  });
  const get = async (id: string, hdrs = headers) => {
    const res = await h.app.inject({
      method: 'GET',
      url: `/api/v1/publishing/posts/${id}`,
      headers: hdrs,
    });
    assert.equal(res.statusCode, 200, res.body);
    return res.json<PostJson>();
  };
  /** The job the target's row points at, as a worker would get it. */
  const jobOf = async (targetId: string) => {
    const [row] = await q<{
      job_id: string;
      version: number;
      name: string;
      data: { payload: { targetId: string; version: number } };
      start_after: Date;
    }>(
      `select t.job_id, t.version, j.name, j.data, j.start_after from publishing_target t
       join pgboss.job j on j.id = t.job_id where t.id = $1`,
      [targetId],
    );
    assert.ok(row, `target ${targetId} has a job`);
    return row;
  };
  const run = async (targetId: string) => {
    const job = await jobOf(targetId);
    return publishTarget(h.rt, job.data.payload, ctx());
  };
  /** Makes the target's current job due now (as if its time came). */
  const due = (targetId: string) =>
    q(`update publishing_target set due_at = now() where id = $1`, [targetId]);
  const posts = async () =>
    (await q<{ n: number }>('select count(*)::int as n from publishing_post'))[0]?.n;

  before(async () => {
    h = await startHarness();
    const a = await createUser(h);
    const b = await createUser(h);
    userId = a.id;
    otherId = b.id;
    headers = bearer((await signIn(h.app, a)).accessToken);
    otherHeaders = bearer((await signIn(h.app, b)).accessToken);
    ig = await account(userId, 'instagram');
    fb = await account(userId, 'facebook');
    yt = await account(userId, 'youtube');
    otherIg = await account(otherId, 'instagram');
  });
  after(async () => {
    await h?.app.close();
    await h?.platform.close();
    await h?.tdb.drop();
    if (h) await rm(h.dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    for (const a of h.adapters.values()) {
      a.script = [];
      a.publishCalls = [];
      a.lookupCalls = [];
      a.quotas = [];
    }
  });

  describe('creating and scheduling', () => {
    test('a draft: 201 with one draft target per account, no job', async () => {
      const res = await create({
        text: 'Draft',
        targets: [{ accountId: ig }, { accountId: fb }],
        timeZone: 'Europe/Berlin',
      });
      assert.equal(res.statusCode, 201, res.body);
      const post = res.json<PostJson>();
      assert.equal(post.status, 'draft');
      assert.equal(post.scheduledAt, null);
      assert.deepEqual(
        post.targets.map((t) => t.status),
        ['draft', 'draft'],
      );
      const jobs = await q(
        `select job_id from publishing_target where post_id = $1 and job_id is not null`,
        [post.id],
      );
      assert.equal(jobs.length, 0);
    });

    test('scheduled: the UTC time and the zone kept, a delayed job per target enqueued with the post, the event', async () => {
      const res = await create(scheduledBody([ig, yt], '2027-07-01T09:30:00+02:00'));
      assert.equal(res.statusCode, 201, res.body);
      const post = res.json<PostJson>();
      assert.equal(post.status, 'scheduled');
      assert.equal(post.scheduledAt, '2027-07-01T07:30:00.000Z');
      assert.equal(post.scheduledAtLocal, '2027-07-01T09:30:00+02:00');
      assert.equal(post.timeZone, 'Europe/Berlin');
      for (const t of post.targets) {
        assert.equal(t.status, 'scheduled');
        const job = await jobOf(t.id);
        assert.equal(job.name, `publishing.publish-${t.platform}`);
        assert.equal(job.start_after.toISOString(), '2027-07-01T07:30:00.000Z');
        assert.equal(job.data.payload.version, job.version);
      }
      const events = await q<{ type: string }>(
        `select type from gw_event where type = 'publishing.post.scheduled' and data->>'postId' = $1`,
        [post.id],
      );
      assert.equal(events.length, 2);
    });

    test('bad times: no offset, past, 10 years ahead, a DST gap, a wrong offset, an unknown zone: 422, nothing stored', async () => {
      const before = await posts();
      const cases: [Record<string, unknown>, string][] = [
        [{ scheduledAt: '2027-07-01T09:30:00' }, 'POST_SCHEDULED_AT_NO_OFFSET'],
        [{ scheduledAt: '2027-07-01' }, 'POST_SCHEDULED_AT_NO_OFFSET'],
        [{ scheduledAt: iso(-60_000) }, 'POST_SCHEDULED_AT_PAST'],
        [{ scheduledAt: iso(10 * 365 * 24 * HOUR) }, 'POST_SCHEDULED_AT_TOO_FAR'],
        // Berlin skips 02:00-03:00 on 28 March 2027.
        [{ scheduledAt: '2027-03-28T02:30:00+01:00' }, 'POST_SCHEDULED_AT_NONEXISTENT'],
        [{ scheduledAt: '2027-07-01T09:30:00+01:00' }, 'POST_SCHEDULED_AT_OFFSET_MISMATCH'],
        [{ timeZone: 'Mars/Olympus' }, 'POST_TIME_ZONE_INVALID'],
      ];
      for (const [more, code] of cases) {
        const res = await create(scheduledBody([ig], '2027-07-01T09:30:00+02:00', more));
        assertProblem(res, 422, code);
      }
      assert.equal(await posts(), before);
    });

    test('the repeated hour of a DST end is accepted with either of its offsets', async () => {
      // Berlin repeats 02:00-03:00 on 31 October 2027: +02:00 then +01:00.
      const a = await create(scheduledBody([ig], '2027-10-31T02:30:00+02:00'));
      const b = await create(scheduledBody([ig], '2027-10-31T02:30:00+01:00'));
      assert.equal(a.statusCode, 201, a.body);
      assert.equal(b.statusCode, 201, b.body);
      assert.equal(a.json<PostJson>().scheduledAt, '2027-10-31T00:30:00.000Z');
      assert.equal(b.json<PostJson>().scheduledAt, '2027-10-31T01:30:00.000Z');
    });

    test('a caption one character over the platform’s limit: 422 with the platform’s rule; at the limit: 201', async () => {
      const before = await posts();
      const over = await create(
        scheduledBody([ig, fb], iso(HOUR), { text: 'x'.repeat(MAX_TEXT + 1) }),
      );
      const problem = assertProblem(over, 422, 'POST_CONTENT_REJECTED') as unknown as {
        problems: { platform: string; code: string; rule: string; accountId: string }[];
      };
      assert.deepEqual(
        problem.problems.map((p) => [p.platform, p.code, p.rule, p.accountId]),
        [
          ['instagram', 'CONTENT_REJECTED', 'instagram.text.max_length', ig],
          ['facebook', 'CONTENT_REJECTED', 'facebook.text.max_length', fb],
        ],
      );
      assert.equal(await posts(), before);
      assert.equal(
        (await create(scheduledBody([ig], iso(HOUR), { text: '😀'.repeat(MAX_TEXT) }))).statusCode,
        201,
      );
    });

    test('options outside the platform’s schema: 422 naming the option', async () => {
      const res = await create({
        ...scheduledBody([]),
        targets: [{ accountId: ig, options: { mediaType: 'carousel-of-dreams' } }],
      });
      const problem = assertProblem(res, 422, 'POST_CONTENT_REJECTED') as unknown as {
        problems: { rule: string }[];
      };
      assert.match(problem.problems[0]?.rule ?? '', /^options/);
    });

    test('someone else’s account, an unknown account, twice the same account: 422, like one that does not exist', async () => {
      const a = assertProblem(await create(scheduledBody([otherIg])), 422, 'POST_ACCOUNT_UNKNOWN');
      const b = assertProblem(
        await create(scheduledBody(['0190a5c4-7b7e-7000-8000-000000000001'])),
        422,
        'POST_ACCOUNT_UNKNOWN',
      );
      assert.deepEqual(a.errors, b.errors);
      assertProblem(await create(scheduledBody([ig, ig])), 422, 'VALIDATION_FAILED');
    });

    test('a post scheduled for an account that needs reconnecting: 422; as a draft it is kept', async () => {
      const stale = await account(userId, 'instagram', 'reauth_required');
      assertProblem(await create(scheduledBody([stale])), 422, 'POST_ACCOUNT_REAUTH_REQUIRED');
      const draft = await create({
        text: 'later',
        targets: [{ accountId: stale }],
        timeZone: 'UTC',
      });
      assert.equal(draft.statusCode, 201, draft.body);
      const id = draft.json<PostJson>().id;
      const scheduled = await h.app.inject({
        method: 'POST',
        url: `/api/v1/publishing/posts/${id}/schedule`,
        headers,
        payload: { scheduledAt: iso(HOUR) },
      });
      assertProblem(scheduled, 422, 'POST_ACCOUNT_REAUTH_REQUIRED');
    });

    test('the same Idempotency-Key: the same post again; with another body: 422 IDEMPOTENCY_KEY_REUSED', async () => {
      const key = { 'idempotency-key': `post-${Date.now()}` };
      const body = scheduledBody([fb], '2027-08-01T10:00:00+02:00');
      const first = await create(body, headers, key);
      const again = await create(body, headers, key);
      assert.equal(first.statusCode, 201);
      assert.equal(again.statusCode, 201);
      assert.equal(again.headers['idempotent-replayed'], 'true');
      assert.equal(again.json<PostJson>().id, first.json<PostJson>().id);
      const other = await create({ ...body, text: 'Another text' }, headers, key);
      assertProblem(other, 422, 'IDEMPOTENCY_KEY_REUSED');
      const count = await q(`select id from publishing_post where text = 'Another text'`);
      assert.equal(count.length, 0);
    });
  });

  describe('media', () => {
    async function upload(hdrs: Record<string, string>, data: Buffer, type: string, name: string) {
      const form = multipart([
        { name: 'purpose', data: 'publishing.media' },
        { name: 'file', filename: name, contentType: type, data },
      ]);
      const res = await h.app.inject({
        method: 'POST',
        url: '/api/v1/files',
        headers: { ...hdrs, 'content-type': form.contentType },
        payload: form.body,
      });
      assert.equal(res.statusCode, 201, res.body);
      return res.json<{ id: string; status: string; contentType: string }>();
    }
    /** The smallest MP4 file-type recognises: an `ftyp` box with the mp42 brand. */
    const mp4 = () =>
      Buffer.concat([
        Buffer.from([0, 0, 0, 0x18]),
        Buffer.from('ftypmp42', 'latin1'),
        Buffer.from([0, 0, 0, 0]),
        Buffer.from('mp42isom', 'latin1'),
        Buffer.alloc(64),
      ]);

    test('images and videos are accepted as publishing.media (stored as sent, ready at once)', async () => {
      const image = await upload(headers, await png(40, 40), 'image/png', 'a.png');
      const video = await upload(headers, mp4(), 'video/mp4', 'a.mp4');
      assert.equal(image.status, 'ready');
      assert.equal(video.contentType, 'video/mp4');
      const ok = await create(scheduledBody([fb], iso(HOUR), { mediaFileIds: [image.id] }));
      assert.equal(ok.statusCode, 201, ok.body);
    });

    test('a video as an Instagram feed image: 422 MEDIA_REJECTED; as a reel: 201', async () => {
      const video = await upload(headers, mp4(), 'video/mp4', 'clip.mp4');
      const feed = await create({
        ...scheduledBody([]),
        mediaFileIds: [video.id],
        targets: [{ accountId: ig, options: { mediaType: 'feed' } }],
      });
      const problem = assertProblem(feed, 422, 'POST_CONTENT_REJECTED') as unknown as {
        problems: { code: string; rule: string }[];
      };
      assert.deepEqual(
        problem.problems.map((p) => [p.code, p.rule]),
        [['MEDIA_REJECTED', 'instagram.feed.images_only']],
      );
      const reel = await create({
        ...scheduledBody([]),
        mediaFileIds: [video.id],
        targets: [{ accountId: ig, options: { mediaType: 'reel' } }],
      });
      assert.equal(reel.statusCode, 201, reel.body);
    });

    test('11 images where 10 are allowed: 422 with the rule', async () => {
      const image = await png(20, 20);
      const ids: string[] = [];
      for (let i = 0; i < 11; i++)
        ids.push((await upload(headers, image, 'image/png', `${i}.png`)).id);
      const res = await create(scheduledBody([fb], iso(HOUR), { mediaFileIds: ids }));
      const problem = assertProblem(res, 422, 'POST_CONTENT_REJECTED') as unknown as {
        problems: { rule: string }[];
      };
      assert.deepEqual(
        problem.problems.map((p) => p.rule),
        ['facebook.media.max_count'],
      );
      assert.equal(
        (await create(scheduledBody([fb], iso(HOUR), { mediaFileIds: ids.slice(0, 10) })))
          .statusCode,
        201,
      );
    });

    test('someone else’s media file: 422 POST_MEDIA_UNKNOWN, like a missing one', async () => {
      const theirs = await upload(otherHeaders, await png(20, 20), 'image/png', 'x.png');
      const a = assertProblem(
        await create(scheduledBody([fb], iso(HOUR), { mediaFileIds: [theirs.id] })),
        422,
        'POST_MEDIA_UNKNOWN',
      );
      const b = assertProblem(
        await create(
          scheduledBody([fb], iso(HOUR), {
            mediaFileIds: ['0190a5c4-7b7e-7000-8000-000000000009'],
          }),
        ),
        422,
        'POST_MEDIA_UNKNOWN',
      );
      assert.deepEqual(a.errors, b.errors);
    });
  });

  describe('reading', () => {
    test('another user’s post is 404 like a missing one, and absent from their list', async () => {
      const mine = (await create(scheduledBody([fb]))).json<PostJson>();
      assertProblem(
        await h.app.inject({
          method: 'GET',
          url: `/api/v1/publishing/posts/${mine.id}`,
          headers: otherHeaders,
        }),
        404,
        'POST_NOT_FOUND',
      );
      assertProblem(
        await h.app.inject({
          method: 'DELETE',
          url: `/api/v1/publishing/posts/${mine.id}`,
          headers: otherHeaders,
        }),
        404,
        'POST_NOT_FOUND',
      );
      const list = await h.app.inject({
        method: 'GET',
        url: '/api/v1/publishing/posts',
        headers: otherHeaders,
      });
      assert.ok(!list.json<{ items: PostJson[] }>().items.some((p) => p.id === mine.id));
    });

    test('the list: keyset pages without repeats, filters by status, platform, account and date', async () => {
      // A fresh user keeps the counts exact.
      const fresh = await createUser(h);
      const fh = bearer((await signIn(h.app, fresh)).accessToken);
      const fIg = await account(fresh.id, 'instagram');
      const fYt = await account(fresh.id, 'youtube');
      const made: string[] = [];
      for (let i = 0; i < 5; i++) {
        const body =
          i < 3
            ? scheduledBody([fIg], `2027-0${i + 1}-15T10:00:00Z`)
            : { text: 'd', targets: [{ accountId: fYt }], timeZone: 'UTC' };
        const res = await create(body, fh);
        assert.equal(res.statusCode, 201, res.body);
        made.push(res.json<PostJson>().id);
      }
      const list = async (query: string) => {
        const res = await h.app.inject({
          method: 'GET',
          url: `/api/v1/publishing/posts${query}`,
          headers: fh,
        });
        assert.equal(res.statusCode, 200, res.body);
        return res.json<{ items: PostJson[]; page: { nextCursor: string | null } }>();
      };
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page = await list(`?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        seen.push(...page.items.map((p) => p.id));
        cursor = page.page.nextCursor;
      } while (cursor);
      assert.deepEqual(seen, [...made].reverse());
      assert.equal((await list('?status=draft')).items.length, 2);
      assert.equal((await list('?status=scheduled')).items.length, 3);
      assert.equal((await list('?platform=youtube')).items.length, 2);
      assert.equal((await list(`?account=${fIg}`)).items.length, 3);
      assert.equal((await list('?platform=facebook')).items.length, 0);
      assert.equal(
        (await list('?scheduledAt[gte]=2027-02-01T00:00:00Z&scheduledAt[lte]=2027-03-31T00:00:00Z'))
          .items.length,
        2,
      );
      assertProblem(
        await h.app.inject({
          method: 'GET',
          url: '/api/v1/publishing/posts?platform=myspace',
          headers: fh,
        }),
        422,
        'VALIDATION_FAILED',
      );
      assertProblem(
        await h.app.inject({
          method: 'GET',
          url: '/api/v1/publishing/posts?colour=red',
          headers: fh,
        }),
        422,
        'INVALID_LIST_QUERY',
      );
    });

    test('the calendar groups by local day across a DST change (23-hour day) and honours the zone', async () => {
      const fresh = await createUser(h);
      const fh = bearer((await signIn(h.app, fresh)).accessToken);
      const fIg = await account(fresh.id, 'instagram');
      // 27 March 2027 23:30 Berlin (+01:00), 28 March 00:30 (+01:00), 28 March 23:30 (+02:00).
      for (const at of [
        '2027-03-27T23:30:00+01:00',
        '2027-03-28T00:30:00+01:00',
        '2027-03-28T23:30:00+02:00',
      ])
        assert.equal((await create(scheduledBody([fIg], at), fh)).statusCode, 201);
      const cal = async (query: string) => {
        const res = await h.app.inject({
          method: 'GET',
          url: `/api/v1/publishing/posts/calendar?${query}`,
          headers: fh,
        });
        assert.equal(res.statusCode, 200, res.body);
        return res.json<{ timeZone: string; days: { date: string; posts: PostJson[] }[] }>();
      };
      const berlin = await cal('from=2027-03-27&to=2027-03-28');
      assert.equal(berlin.timeZone, 'Europe/Berlin'); // the author's zone, from their posts
      assert.deepEqual(
        berlin.days.map((d) => [d.date, d.posts.length]),
        [
          ['2027-03-27', 1],
          ['2027-03-28', 2],
        ],
      );
      const onlyThe28th = await cal('from=2027-03-28&to=2027-03-28&timeZone=Europe/Berlin');
      assert.deepEqual(
        onlyThe28th.days.map((d) => [d.date, d.posts.length]),
        [['2027-03-28', 2]],
      );
      const utc = await cal('from=2027-03-27&to=2027-03-28&timeZone=UTC');
      assert.deepEqual(
        utc.days.map((d) => [d.date, d.posts.length]),
        [
          ['2027-03-27', 2],
          ['2027-03-28', 1],
        ],
      );
      assertProblem(
        await h.app.inject({
          method: 'GET',
          url: '/api/v1/publishing/posts/calendar?from=2027-03-28&to=2027-03-01',
          headers: fh,
        }),
        422,
        'POST_CALENDAR_RANGE_INVALID',
      );
      assertProblem(
        await h.app.inject({
          method: 'GET',
          url: '/api/v1/publishing/posts/calendar?from=2027-01-01&to=2027-12-31',
          headers: fh,
        }),
        422,
        'POST_CALENDAR_RANGE_INVALID',
      );
      assertProblem(
        await h.app.inject({
          method: 'GET',
          url: '/api/v1/publishing/posts/calendar?from=2027-03-01&to=2027-03-02&timeZone=Nowhere/Land',
          headers: fh,
        }),
        422,
        'POST_TIME_ZONE_INVALID',
      );
    });

    test('no N+1: a page of 20 posts with their targets costs the statements a page of 2 does', async () => {
      const fresh = await createUser(h);
      const fh = bearer((await signIn(h.app, fresh)).accessToken);
      const accounts = [await account(fresh.id, 'instagram'), await account(fresh.id, 'facebook')];
      for (let i = 0; i < 20; i++)
        assert.equal((await create(scheduledBody(accounts), fh)).statusCode, 201);
      // Count the statements the pool runs during one request (Kysely takes a client per query).
      const pool = h.tdb.database.pool;
      const connect = pool.connect.bind(pool);
      let statements = 0;
      // Pooled clients are reused: each is wrapped once.
      const wrapped = new WeakSet<object>();
      const counting = async () => {
        const client = await connect();
        if (!wrapped.has(client)) {
          wrapped.add(client);
          const query = client.query.bind(client);
          (client as { query: unknown }).query = (...args: unknown[]) => {
            statements += 1;
            return (query as (...a: unknown[]) => unknown)(...args);
          };
        }
        return client;
      };
      const measure = async (limit: number) => {
        (pool as { connect: unknown }).connect = counting;
        statements = 0;
        try {
          const res = await h.app.inject({
            method: 'GET',
            url: `/api/v1/publishing/posts?limit=${limit}`,
            headers: fh,
          });
          assert.equal(res.statusCode, 200, res.body);
          const items = res.json<{ items: PostJson[] }>().items;
          assert.equal(items.length, limit);
          assert.ok(items.every((p) => p.targets.length === 2));
        } finally {
          (pool as { connect: unknown }).connect = connect;
        }
        return statements;
      };
      await measure(2); // warms the caller's session cache
      const small = await measure(2);
      const large = await measure(20);
      assert.equal(large, small);
      assert.equal(large, 1, 'one statement per page, targets included');
    });

    test('every list and filter reads an index (EXPLAIN with sequential scans off)', async () => {
      const plan = async (sql: string, values: unknown[]) => {
        const client = await h.tdb.database.pool.connect();
        try {
          await client.query('begin');
          await client.query('set local enable_seqscan = off');
          const rows = await client.query<{ 'QUERY PLAN': string }>(`explain ${sql}`, values);
          await client.query('rollback');
          return rows.rows.map((r) => r['QUERY PLAN']).join('\n');
        } finally {
          client.release();
        }
      };
      const cases: [string, unknown[], RegExp][] = [
        [
          `select id from publishing_post p where user_id = $1 and deleted_at is null order by created_at desc, id desc limit 21`,
          [userId],
          /publishing_post_user_created_idx/,
        ],
        [
          `select id from publishing_post p where user_id = $1 and deleted_at is null and status = $2 order by created_at desc, id desc limit 21`,
          [userId, 'scheduled'],
          /publishing_post_user_status_idx/,
        ],
        [
          `select id from publishing_post p where user_id = $1 and deleted_at is null and scheduled_at >= $2 and scheduled_at < $3 order by scheduled_at, id limit 1001`,
          [userId, new Date(), new Date(Date.now() + HOUR)],
          /publishing_post_user_scheduled_idx/,
        ],
        [
          `select 1 from publishing_target where post_id = $1 and account_id = $2`,
          ['0190a5c4-7b7e-7000-8000-000000000001', ig],
          /publishing_target_(post_account|account)_idx/,
        ],
        [
          `select 1 from publishing_target where post_id = $1 and user_id = $2 and platform = $3`,
          ['0190a5c4-7b7e-7000-8000-000000000001', userId, 'instagram'],
          /publishing_target_(platform|post_account)_idx/,
        ],
        [
          `select id from publishing_target where account_id = $1 and status in ('draft', 'scheduled', 'failed') for update`,
          [ig],
          /publishing_target_account_idx/,
        ],
        [
          `select id from publishing_target where status = 'publishing' and lease_until < now() order by lease_until limit 500`,
          [],
          /publishing_target_lease_idx/,
        ],
        [
          `select platform, count(*) from publishing_target where status = 'scheduled' and due_at <= now() group by platform`,
          [],
          /publishing_target_due_idx/,
        ],
      ];
      for (const [sql, values, index] of cases) {
        const text = await plan(sql, values);
        assert.match(text, index, text);
        assert.doesNotMatch(text, /Seq Scan/, text);
      }
    });
  });

  describe('changing a scheduled post', () => {
    test('reschedule replaces the jobs atomically: the old job exits as stale, the new one publishes once', async () => {
      const post = (await create(scheduledBody([ig]))).json<PostJson>();
      const target = post.targets[0] as TargetJson;
      const oldJob = await jobOf(target.id);
      const res = await h.app.inject({
        method: 'POST',
        url: `/api/v1/publishing/posts/${post.id}/schedule`,
        headers,
        payload: { scheduledAt: iso(2 * HOUR) },
      });
      assert.equal(res.statusCode, 200, res.body);
      const newJob = await jobOf(target.id);
      assert.notEqual(newJob.job_id, oldJob.job_id);
      assert.ok(newJob.version > oldJob.version);
      const created = await h.app.inject({
        method: 'POST',
        url: '/api/v1/publishing/posts',
        headers,
        payload: scheduledBody([fb]),
      });
      assert.match(
        String(created.headers.location),
        /^\/api\/v1\/publishing\/posts\/[0-9a-f-]{36}$/,
      );
      assert.deepEqual(await publishTarget(h.rt, oldJob.data.payload, ctx()), { outcome: 'stale' });
      assert.equal(h.adapters.get('instagram')?.publishCalls.length, 0);
      // Without a body: scheduled again at its own time (still ahead), the job replaced again.
      const again = await h.app.inject({
        method: 'POST',
        url: `/api/v1/publishing/posts/${post.id}/schedule`,
        headers,
      });
      assert.equal(again.statusCode, 200, again.body);
      assert.equal(again.json<PostJson>().scheduledAt, res.json<PostJson>().scheduledAt);
      assert.notEqual((await jobOf(target.id)).job_id, newJob.job_id);
      await due(target.id);
      assert.deepEqual(await run(target.id), { outcome: 'published' });
      assert.deepEqual(h.adapters.get('instagram')?.publishCalls, [target.id]);
    });

    test('cancel: the targets are cancelled and their job exits; cancelling again is 409', async () => {
      const post = (await create(scheduledBody([ig, fb]))).json<PostJson>();
      const jobs = await Promise.all(post.targets.map((t) => jobOf(t.id)));
      const res = await h.app.inject({
        method: 'POST',
        url: `/api/v1/publishing/posts/${post.id}/cancel`,
        headers,
      });
      assert.equal(res.statusCode, 200, res.body);
      const cancelled = res.json<PostJson>();
      assert.equal(cancelled.status, 'cancelled');
      assert.deepEqual(
        cancelled.targets.map((t) => t.status),
        ['cancelled', 'cancelled'],
      );
      for (const job of jobs)
        assert.deepEqual(await publishTarget(h.rt, job.data.payload, ctx()), { outcome: 'stale' });
      assertProblem(
        await h.app.inject({
          method: 'POST',
          url: `/api/v1/publishing/posts/${post.id}/cancel`,
          headers,
        }),
        409,
        'POST_NOT_SCHEDULED',
      );
    });

    test('PATCH of a scheduled post re-checks and reschedules; scheduledAt null makes it a draft', async () => {
      const post = (await create(scheduledBody([ig]))).json<PostJson>();
      const before = await jobOf(post.targets[0]?.id as string);
      const tooLong = await h.app.inject({
        method: 'PATCH',
        url: `/api/v1/publishing/posts/${post.id}`,
        headers,
        payload: { text: 'y'.repeat(MAX_TEXT + 1) },
      });
      assertProblem(tooLong, 422, 'POST_CONTENT_REJECTED');
      const patched = await h.app.inject({
        method: 'PATCH',
        url: `/api/v1/publishing/posts/${post.id}`,
        headers,
        payload: { text: 'Edited' },
      });
      assert.equal(patched.statusCode, 200, patched.body);
      assert.equal(patched.json<PostJson>().status, 'scheduled');
      const after = await jobOf(post.targets[0]?.id as string);
      assert.notEqual(after.job_id, before.job_id);
      const drafted = await h.app.inject({
        method: 'PATCH',
        url: `/api/v1/publishing/posts/${post.id}`,
        headers,
        payload: { scheduledAt: null },
      });
      assert.equal(drafted.json<PostJson>().status, 'draft');
      assert.deepEqual(await publishTarget(h.rt, after.data.payload, ctx()), { outcome: 'stale' });
    });

    test('duplicate makes a draft copy; delete cancels the waiting targets', async () => {
      const post = (await create(scheduledBody([ig, yt]))).json<PostJson>();
      const copy = await h.app.inject({
        method: 'POST',
        url: `/api/v1/publishing/posts/${post.id}/duplicate`,
        headers,
      });
      assert.equal(copy.statusCode, 201, copy.body);
      const dup = copy.json<PostJson>();
      assert.notEqual(dup.id, post.id);
      assert.equal(dup.status, 'draft');
      assert.deepEqual(dup.targets.map((t) => t.accountId).sort(), [ig, yt].sort());
      const job = await jobOf(post.targets[0]?.id as string);
      const del = await h.app.inject({
        method: 'DELETE',
        url: `/api/v1/publishing/posts/${post.id}`,
        headers,
      });
      assert.equal(del.statusCode, 204);
      assertProblem(
        await h.app.inject({ method: 'GET', url: `/api/v1/publishing/posts/${post.id}`, headers }),
        404,
        'POST_NOT_FOUND',
      );
      assert.deepEqual(await publishTarget(h.rt, job.data.payload, ctx()), { outcome: 'stale' });
    });
  });

  describe('publishing', () => {
    const scheduleOne = async (accountId: string, at = iso(HOUR)) => {
      const post = (await create(scheduledBody([accountId], at))).json<PostJson>();
      const target = post.targets[0] as TargetJson;
      await due(target.id);
      return { post, target };
    };

    test('a due target is published once: its id and URL kept, the event, the job run again is stale', async () => {
      const { post, target } = await scheduleOne(fb);
      // Due and not taken yet: counted by the gauge (read from the database at scrape).
      assert.match(
        await h.platform.metrics.metrics(),
        /publishing_posts_due\{platform="facebook"\} [1-9]/,
      );
      const job = await jobOf(target.id);
      assert.deepEqual(await publishTarget(h.rt, job.data.payload, ctx()), {
        outcome: 'published',
      });
      assert.deepEqual(await publishTarget(h.rt, job.data.payload, ctx()), { outcome: 'stale' });
      const fake = h.adapters.get('facebook') as FakeAdapter;
      assert.deepEqual(fake.publishCalls, [target.id]); // our marker: the target's id
      const done = await get(post.id);
      assert.equal(done.status, 'published');
      const t = done.targets[0] as TargetJson;
      assert.equal(t.status, 'published');
      assert.equal(t.externalId, fake.posts.get(target.id)?.externalId);
      assert.equal(t.url, fake.posts.get(target.id)?.url);
      assert.equal(t.attempts, 1);
      const events = await q(
        `select 1 from gw_event where type = 'publishing.post.published' and data->>'targetId' = $1`,
        [target.id],
      );
      assert.equal(events.length, 1);
      const metrics = await h.platform.metrics.metrics();
      assert.match(metrics, /publishing_published_total\{platform="facebook"\} [1-9]/);
      assert.match(metrics, /publishing_publish_lag_seconds_count\{platform="facebook"\} [1-9]/);
      // Published: no longer editable.
      assertProblem(
        await h.app.inject({
          method: 'PATCH',
          url: `/api/v1/publishing/posts/${post.id}`,
          headers,
          payload: { text: 'x' },
        }),
        409,
        'POST_NOT_SCHEDULABLE',
      );
    });

    test('a timeout after the post was created: OUTCOME_UNKNOWN, and the retry finds it by marker instead of posting again', async () => {
      const fake = h.adapters.get('youtube') as FakeAdapter;
      fake.script = ['created-then-timeout'];
      const { post, target } = await scheduleOne(yt);
      assert.deepEqual(await run(target.id), { outcome: 'retry' });
      const waiting = (await get(post.id)).targets[0] as TargetJson;
      assert.equal(waiting.status, 'scheduled');
      assert.equal(waiting.error?.code, 'OUTCOME_UNKNOWN');
      await due(target.id);
      assert.deepEqual(await run(target.id), { outcome: 'found' });
      assert.deepEqual(fake.publishCalls, [target.id]); // one call only
      assert.deepEqual(fake.lookupCalls, [target.id]);
      const done = (await get(post.id)).targets[0] as TargetJson;
      assert.equal(done.status, 'published');
      assert.equal(done.externalId, fake.posts.get(target.id)?.externalId);
      assert.equal(done.error, null);
    });

    test('the last attempt’s outcome unknown: one more run only looks it up (found: published; not found: failed, no fourth call)', async () => {
      const fake = h.adapters.get('youtube') as FakeAdapter;
      const expired = () =>
        new PlatformError('TOKEN_EXPIRED', 'refresh failed for now', {
          retryable: true,
          action: 'retry_later',
        });
      const lostAnswer = new PlatformError('OUTCOME_UNKNOWN', 'reset after sending', {
        retryable: true,
        action: 'retry_later',
        sent: true,
      });
      // Found: the third call created it.
      fake.script = [expired(), expired(), 'created-then-timeout'];
      const a = (await scheduleOne(yt)).target;
      const outcomes: string[] = [];
      for (let i = 0; i < 4; i++) outcomes.push((await run(a.id)).outcome);
      assert.deepEqual(outcomes, ['retry', 'retry', 'retry', 'found']);
      assert.equal(fake.publishCalls.filter((m) => m === a.id).length, 3);
      // Not found: the third call never made it.
      fake.script = [expired(), expired(), lostAnswer];
      const { post, target: b } = await scheduleOne(yt);
      const more: string[] = [];
      for (let i = 0; i < 4; i++) more.push((await run(b.id)).outcome);
      assert.deepEqual(more, ['retry', 'retry', 'retry', 'failed']);
      assert.equal(fake.publishCalls.filter((m) => m === b.id).length, 3);
      const t = (await get(post.id)).targets[0] as TargetJson;
      assert.equal(t.status, 'failed');
      assert.equal(t.error?.code, 'OUTCOME_UNKNOWN');
      assert.equal(t.attempts, 3);
    });

    test('a worker killed mid-publish: the sweep settles the expired claim by marker, published once', async () => {
      const fake = h.adapters.get('instagram') as FakeAdapter;
      const { target } = await scheduleOne(ig);
      // The claim and the call happen, then the process dies before recording anything: the
      // platform holds the post, our row says `publishing` with a lease that runs out.
      await q(
        `update publishing_target set status = 'publishing', attempts = attempts + 1, version = version + 1,
           lease_until = now() - interval '1 second' where id = $1`,
        [target.id],
      );
      fake.posts.set(target.id, { externalId: 'ext-crash', url: 'https://instagram.test/p/crash' });
      assert.equal(await sweepExpiredClaims(h.rt), 1);
      assert.equal(await sweepExpiredClaims(h.rt), 0);
      await due(target.id);
      assert.deepEqual(await run(target.id), { outcome: 'found' });
      assert.deepEqual(fake.publishCalls, []);
      const [row] = await q<{ status: string; external_id: string; attempts: number }>(
        'select status, external_id, attempts from publishing_target where id = $1',
        [target.id],
      );
      assert.deepEqual(row, { status: 'published', external_id: 'ext-crash', attempts: 2 });
    });

    test('the queue’s retry of a killed worker’s job sweeps the claim once its lease has passed', async () => {
      const fake = h.adapters.get('instagram') as FakeAdapter;
      const { target } = await scheduleOne(ig);
      const job = await jobOf(target.id);
      await q(
        `update publishing_target set status = 'publishing', attempts = 1, version = version + 1,
           lease_until = now() + interval '1 minute' where id = $1`,
        [target.id],
      );
      // Within the lease: the claim may still be alive, so the retry leaves it.
      assert.deepEqual(await publishTarget(h.rt, job.data.payload, ctx()), { outcome: 'stale' });
      await q(
        `update publishing_target set lease_until = now() - interval '1 second' where id = $1`,
        [target.id],
      );
      fake.posts.set(target.id, { externalId: 'ext-retry', url: 'https://instagram.test/p/retry' });
      assert.deepEqual(await publishTarget(h.rt, job.data.payload, ctx()), { outcome: 'swept' });
      assert.deepEqual(await run(target.id), { outcome: 'found' });
      assert.deepEqual(fake.publishCalls, []);
    });

    test('a killed worker whose call never reached the platform: looked up, not found, then published', async () => {
      const fake = h.adapters.get('instagram') as FakeAdapter;
      const { target } = await scheduleOne(ig);
      await q(
        `update publishing_target set status = 'publishing', version = version + 1, lease_until = now() - interval '1 second' where id = $1`,
        [target.id],
      );
      await sweepExpiredClaims(h.rt);
      await due(target.id);
      assert.deepEqual(await run(target.id), { outcome: 'published' });
      assert.deepEqual(fake.lookupCalls, [target.id]);
      assert.deepEqual(fake.publishCalls, [target.id]);
    });

    test('a quota spent: the target waits for when it fits, never sent, no attempt spent', async () => {
      const fake = h.adapters.get('facebook') as FakeAdapter;
      fake.quotas = [
        { endpoint: 'publish', limit: 2, periodMs: HOUR, description: '2 per hour (test)' },
      ];
      const quotaAccount = await account(userId, 'facebook');
      const targets = [];
      for (let i = 0; i < 3; i++) targets.push((await scheduleOne(quotaAccount)).target);
      const outcomes = [];
      for (const t of targets) outcomes.push((await run(t.id)).outcome);
      assert.deepEqual(outcomes, ['published', 'published', 'wait:quota']);
      assert.equal(fake.publishCalls.length, 2);
      const [row] = await q<{ status: string; attempts: number; due_at: Date }>(
        'select status, attempts, due_at from publishing_target where id = $1',
        [targets[2]?.id],
      );
      assert.equal(row?.status, 'scheduled');
      assert.equal(row?.attempts, 0);
      // GCRA: 2 per hour, the next unit in 30 minutes.
      const wait = (row as { due_at: Date }).due_at.getTime() - Date.now();
      assert.ok(wait > 25 * 60_000 && wait <= 31 * 60_000, `waits ${wait} ms`);
      assert.match(
        await h.platform.metrics.metrics(),
        /publishing_quota_waits_total\{platform="facebook",endpoint="publish"\} [1-9]/,
      );
    });

    test('a lookup pending takes no quota: found, published at once; not found, back to take its quota first', async () => {
      const fake = h.adapters.get('facebook') as FakeAdapter;
      fake.quotas = [
        { endpoint: 'publish', limit: 1, periodMs: HOUR, description: '1 per hour (test)' },
      ];
      // Found: the one call spent the hour's unit and its answer was lost.
      fake.script = ['created-then-timeout'];
      const found = (await scheduleOne(await account(userId, 'facebook'))).target;
      assert.deepEqual(await run(found.id), { outcome: 'retry' });
      await due(found.id);
      assert.deepEqual(await run(found.id), { outcome: 'found' }, 'not held by the spent quota');
      assert.deepEqual(
        fake.publishCalls.filter((m) => m === found.id),
        [found.id],
      );
      // Not found: the lost call never made it; the lookup sends the target back, and the next
      // run waits for the quota (spent by the lost call) instead of sending.
      const lost = new PlatformError('OUTCOME_UNKNOWN', 'reset after sending', {
        retryable: true,
        action: 'retry_later',
        sent: true,
      });
      fake.script = [lost];
      const other = (await scheduleOne(await account(userId, 'facebook'))).target;
      assert.deepEqual(await run(other.id), { outcome: 'retry' });
      await due(other.id);
      assert.deepEqual(await run(other.id), { outcome: 'wait:looked-up' });
      assert.deepEqual(await run(other.id), { outcome: 'wait:quota' });
      assert.deepEqual(
        fake.publishCalls.filter((m) => m === other.id),
        [other.id],
      );
      const [row] = await q<{ status: string; needs_lookup: boolean; attempts: number }>(
        'select status, needs_lookup, attempts from publishing_target where id = $1',
        [other.id],
      );
      // One call made: the lookup's run and the quota's wait are not attempts.
      assert.deepEqual(row, { status: 'scheduled', needs_lookup: false, attempts: 1 });
    });

    test('a platform 429 with Retry-After: rescheduled by it, not counted as a failure', async () => {
      const fake = h.adapters.get('youtube') as FakeAdapter;
      fake.script = [
        new PlatformError('PLATFORM_RATE_LIMITED', '429', {
          retryable: true,
          action: 'retry_later',
          retryAfterMs: 120_000,
        }),
      ];
      const { target } = await scheduleOne(yt);
      assert.deepEqual(await run(target.id), { outcome: 'wait' });
      const [row] = await q<{
        status: string;
        failures: number;
        due_at: Date;
        error: { code: string };
      }>('select status, failures, due_at, error from publishing_target where id = $1', [
        target.id,
      ]);
      assert.equal(row?.status, 'scheduled');
      assert.equal(row?.failures, 0);
      assert.equal(row?.error.code, 'PLATFORM_RATE_LIMITED');
      const wait = (row as { due_at: Date }).due_at.getTime() - Date.now();
      assert.ok(wait > 110_000 && wait <= 120_000, `waits ${wait} ms`);
    });

    test('retryable failures back off, then the target fails for good with the reason, the event and a mail', async () => {
      const fake = h.adapters.get('instagram') as FakeAdapter;
      fake.script = [unavailable(), unavailable(), unavailable()];
      // Another account than the breaker test's, and the breaker must not open here: 3 failures
      // open it (PUBLISHING_BREAKER_FAILURES=3), so the third run may find it open; reset by success first.
      const { post, target } = await scheduleOne(ig);
      const outcomes: string[] = [];
      for (let i = 0; i < 3; i++) {
        outcomes.push((await run(target.id)).outcome);
        await due(target.id);
      }
      assert.deepEqual(outcomes.slice(0, 2), ['retry', 'retry']);
      assert.equal(outcomes[2], 'failed');
      const t = (await get(post.id)).targets[0] as TargetJson;
      assert.equal(t.status, 'failed');
      assert.deepEqual(t.error, {
        code: 'PLATFORM_UNAVAILABLE',
        message: '503 from the platform',
        retryable: true,
        action: 'retry_later',
      });
      assert.equal(t.attempts, 3);
      const events = await q(
        `select 1 from gw_event where type = 'publishing.post.failed' and data->>'targetId' = $1`,
        [target.id],
      );
      assert.equal(events.length, 1);
      const mails = await q(
        `select 1 from gw_mail_delivery where template = 'publishing.post-failed' and user_id = $1`,
        [userId],
      );
      assert.ok(mails.length >= 1);
    });

    test('the breaker: after consecutive unavailable answers the platform’s targets wait without spending attempts', async () => {
      const fake = h.adapters.get('instagram') as FakeAdapter;
      // The previous test left three consecutive failures: the breaker is open.
      const { target } = await scheduleOne(ig);
      fake.script = [];
      assert.deepEqual(await run(target.id), { outcome: 'wait:breaker' });
      assert.equal(fake.publishCalls.length, 0);
      const [row] = await q<{ status: string; attempts: number }>(
        'select status, attempts from publishing_target where id = $1',
        [target.id],
      );
      assert.deepEqual(row, { status: 'scheduled', attempts: 0 });
      assert.match(
        await h.platform.metrics.metrics(),
        /publishing_breaker_state\{platform="instagram"\} 1/,
      );
    });

    test('a platform answer that is an error (a 200 with an error body, typed by the adapter): failed at once, not retried', async () => {
      const fake = h.adapters.get('facebook') as FakeAdapter;
      fake.script = [
        new PlatformError('CONTENT_REJECTED', '(#100) Invalid parameter', {
          retryable: false,
          action: 'edit_post',
          platformCode: '100',
        }),
      ];
      const { post, target } = await scheduleOne(fb);
      assert.deepEqual(await run(target.id), { outcome: 'failed' });
      const t = (await get(post.id)).targets[0] as TargetJson;
      assert.equal(t.status, 'failed');
      assert.equal(t.error?.code, 'CONTENT_REJECTED');
      assert.equal(t.error?.action, 'edit_post');
      // The owner retries it after fixing: scheduled again now, then published.
      const retried = await h.app.inject({
        method: 'POST',
        url: `/api/v1/publishing/posts/${post.id}/targets/${target.id}/retry`,
        headers,
      });
      assert.equal(retried.statusCode, 200, retried.body);
      assert.equal((retried.json<PostJson>().targets[0] as TargetJson).status, 'scheduled');
      assert.deepEqual(await run(target.id), { outcome: 'published' });
      assertProblem(
        await h.app.inject({
          method: 'POST',
          url: `/api/v1/publishing/posts/${post.id}/targets/${target.id}/retry`,
          headers,
        }),
        409,
        'POST_TARGET_NOT_RETRYABLE',
      );
      assertProblem(
        await h.app.inject({
          method: 'POST',
          url: `/api/v1/publishing/posts/${post.id}/targets/${post.id}/retry`,
          headers,
        }),
        404,
        'POST_TARGET_NOT_FOUND',
      );
    });

    test('the platform refuses the token: the target is paused, the account marked; reconnecting schedules its targets again', async () => {
      const acc = await account(userId, 'youtube');
      const fake = h.adapters.get('youtube') as FakeAdapter;
      fake.script = [
        new PlatformError('ACCOUNT_REAUTH_REQUIRED', 'token revoked', {
          retryable: false,
          action: 'reconnect_account',
        }),
      ];
      const { post, target } = await scheduleOne(acc);
      const other = (await create(scheduledBody([acc], iso(2 * HOUR)))).json<PostJson>();
      assert.deepEqual(await run(target.id), { outcome: 'paused' });
      assert.deepEqual(h.reauthCalls.slice(-1), [acc]);
      const paused = (await get(post.id)).targets[0] as TargetJson;
      assert.equal(paused.status, 'failed');
      assert.equal(paused.error?.code, 'ACCOUNT_REAUTH_REQUIRED');
      assert.equal(paused.error?.action, 'reconnect_account');
      // The hook paused the account's other scheduled target in the accounts' transaction.
      const otherTarget = (await get(other.id)).targets[0] as TargetJson;
      assert.equal(otherTarget.status, 'failed');
      assert.equal(otherTarget.error?.code, 'ACCOUNT_REAUTH_REQUIRED');
      // Reconnected: the one whose time is still ahead is scheduled again; the past one stays failed.
      await q(`update publishing_account set status = 'active' where id = $1`, [acc]);
      // The first post's time passes while the account waits for its owner.
      await q(
        `update publishing_post set scheduled_at = now() - interval '1 minute' where id = $1`,
        [post.id],
      );
      await withTransaction(h.platform.database.db, (trx) => h.rt.hooks.onReconnected(trx, acc));
      assert.equal(((await get(other.id)).targets[0] as TargetJson).status, 'scheduled');
      assert.equal(((await get(post.id)).targets[0] as TargetJson).status, 'failed');
      await jobOf(otherTarget.id); // a fresh job
      // Removed: its waiting targets are cancelled.
      await withTransaction(h.platform.database.db, (trx) => h.rt.hooks.onRemoved(trx, acc));
      assert.equal(((await get(other.id)).targets[0] as TargetJson).status, 'cancelled');
    });

    test('media removed before publish time: checked again at publish, MEDIA_REJECTED, nothing sent', async () => {
      const form = multipart([
        { name: 'purpose', data: 'publishing.media' },
        { name: 'file', filename: 'p.png', contentType: 'image/png', data: await png(30, 30) },
      ]);
      const up = await h.app.inject({
        method: 'POST',
        url: '/api/v1/files',
        headers: { ...headers, 'content-type': form.contentType },
        payload: form.body,
      });
      const fileId = up.json<{ id: string }>().id;
      const post = (
        await create(scheduledBody([fb], iso(HOUR), { mediaFileIds: [fileId] }))
      ).json<PostJson>();
      const target = post.targets[0] as TargetJson;
      await h.app.inject({ method: 'DELETE', url: `/api/v1/files/${fileId}`, headers });
      await due(target.id);
      const fake = h.adapters.get('facebook') as FakeAdapter;
      assert.deepEqual(await run(target.id), { outcome: 'failed' });
      assert.equal(fake.publishCalls.length, 0);
      const t = (await get(post.id)).targets[0] as TargetJson;
      assert.equal(t.error?.code, 'MEDIA_REJECTED');
      assert.equal(t.attempts, 0);
    });
  });

  test('anonymous callers get 401', async () => {
    assertProblem(
      await h.app.inject({ method: 'GET', url: '/api/v1/publishing/posts' }),
      401,
      'UNAUTHORIZED',
    );
    assertProblem(await create(scheduledBody([ig]), {}), 401, 'UNAUTHORIZED');
    void otherId;
  });
});
