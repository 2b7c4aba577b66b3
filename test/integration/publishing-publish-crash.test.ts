// Exactly once across a crash: a worker process (node src/main.ts worker, with the publishing app
// added by a preload) is killed with SIGKILL while its call to the platform is in flight, after
// the platform created the post. A new worker started after the claim's lease settles the target
// by looking the marker up (startPosts' sweep): published once, the platform's post recorded.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { startServer, waitFor } from '../helpers/chaos.ts';
import {
  connectFakeAccount,
  PUBLISHING_PREFIX,
  publishingTestOverrides,
  startPublishingHarness,
  type PublishingHarness,
} from '../helpers/publishing.ts';

interface TargetJson {
  id: string;
  status: string;
  attempts: number;
  externalId: string | null;
}

const root = join(import.meta.dirname, '..', '..');
// Adds the publishing app to the worker's app list (src/apps/index.ts may not list it yet).
const preload = `data:text/javascript,${encodeURIComponent(
  `import { allApps } from ${JSON.stringify(pathToFileURL(join(root, 'src/apps/index.ts')).href)};
   import { publishingApp } from ${JSON.stringify(pathToFileURL(join(root, 'src/apps/publishing/index.ts')).href)};
   if (!allApps.includes(publishingApp)) allApps.push(publishingApp);`,
)}`;

let h: PublishingHarness;
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gw-pub-crash-'));
  // The test process only serves the API (no workers): the child processes publish.
  h = await startPublishingHarness({ work: false, overrides: { STORAGE_LOCAL_DIR: dir } });
});
after(async () => {
  await h?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('publishing: a worker killed mid-publish', { timeout: 120_000 }, () => {
  test('the next worker finds the post by its marker: on the platform once, recorded as published', async (t) => {
    const user = await h.user();
    const account = await connectFakeAccount(h.app, user.token, 'facebook');
    const env = {
      ...publishingTestOverrides(h.fakes, {
        STORAGE_LOCAL_DIR: dir,
        // The call hangs after the platform created the post; the worker is killed before its
        // own timeout, so nothing is recorded: the claim's lease (3 s + 5 s) runs out.
        PUBLISHING_HTTP_TIMEOUT_MS: '60000',
        PUBLISHING_PUBLISH_TIMEOUT: '3s',
      }),
      DATABASE_URL: h.tdb.url,
      APP_SECRET: h.config.secrets.appSecret,
      JOBS_POLL_INTERVAL_MS: '500',
      JOBS_SUPERVISE_INTERVAL_S: '1',
    };
    const first = await startServer(t, { role: 'worker', preload: [preload], env });

    h.fakes.set('facebook', { timeoutAfterCreate: true });
    const text = `crash ${Date.now()}`;
    const res = await h.app.inject({
      method: 'POST',
      url: `${PUBLISHING_PREFIX}/posts`,
      headers: user.headers,
      payload: {
        text,
        targets: [{ accountId: account.id }],
        scheduledAt: new Date(Date.now() + 1000).toISOString(),
        timeZone: 'UTC',
      },
    });
    assert.equal(res.statusCode, 201, res.body);
    const postId = res.json<{ id: string }>().id;
    const onFake = () => h.fakes.posts('facebook').filter((p) => p.text.includes(text));
    const target = async () => {
      const post = await h.app.inject({
        method: 'GET',
        url: `${PUBLISHING_PREFIX}/posts/${postId}`,
        headers: user.headers,
      });
      return post.json<{ targets: TargetJson[] }>().targets[0] as TargetJson;
    };

    await waitFor('the platform created the post', async () => onFake().length === 1, 20_000, 20);
    assert.equal((await target()).status, 'publishing');
    first.child.kill('SIGKILL');
    await first.exited;
    h.fakes.reset();
    assert.equal((await target()).status, 'publishing', 'nothing recorded by the killed worker');

    // After the lease, a new worker's start settles the claim through the marker.
    await sleep(8_500);
    await startServer(t, { role: 'worker', preload: [preload], env });
    await waitFor(
      'the target settled',
      async () => (await target()).status === 'published',
      30_000,
      200,
    );
    const settled = await target();
    assert.equal(onFake().length, 1, 'on the platform exactly once');
    assert.equal(settled.externalId, onFake()[0]?.id);
    assert.equal(settled.attempts, 2, 'the killed call and the lookup run');
  });
});
