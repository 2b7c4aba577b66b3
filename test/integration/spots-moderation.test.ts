// The spots app's abuse controls: reports (one per user, rate-limited, a threshold that takes a
// spot out of public reads pending review), the moderation queue, new accounts' spots waiting
// for review (SPOTS_MODERATE_NEW_ACCOUNTS), and the per-user creation limit.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertProblem } from '../helpers/problem.ts';
import {
  startSpotsHarness,
  type SpotJson,
  type SpotsHarness,
  type SpotsUser,
} from '../helpers/spots.ts';

let h: SpotsHarness;
let owner: SpotsUser;
let mod: SpotsUser;

before(async () => {
  h = await startSpotsHarness({
    SPOTS_REPORT_HIDE_THRESHOLD: '2',
    SPOTS_MODERATE_NEW_ACCOUNTS: 'true',
    SPOTS_TRUSTED_AFTER: '1',
    SPOTS_TRUSTED_AFTER_DAYS: '1',
    SPOTS_CREATE_PER_HOUR: '4',
    SPOTS_REPORTS_PER_HOUR: '3',
    RATE_LIMIT_ENABLED: 'true',
    RATE_LIMIT_FREE_PER_MIN: '100000',
    RATE_LIMIT_ANONYMOUS_PER_MIN: '100000',
  });
  owner = await h.user();
  // Old enough to be trusted by age (SPOTS_TRUSTED_AFTER_DAYS): only its public spots count.
  await age(owner, 2);
  mod = await h.user('moderator');
});

/** Makes the account `days` days old. */
async function age(who: SpotsUser, days: number): Promise<void> {
  await h.tdb.database.pool.query(
    `update gw_user set created_at = now() - make_interval(days => $2) where id = $1`,
    [who.user.id, days],
  );
}
after(() => h?.close());

const post = (url: string, headers: Record<string, string>, payload?: Record<string, unknown>) =>
  h.app.inject({
    method: 'POST',
    url: `/api/v1/spots${url}`,
    headers,
    ...(payload ? { payload } : {}),
  });
const get = (url: string, headers: Record<string, string> = {}) =>
  h.app.inject({ method: 'GET', url: `/api/v1/spots${url}`, headers });

interface QueueJson {
  items: (SpotJson & { reportCount: number; reports: string[] })[];
  page: { nextCursor: string | null };
}

describe('spots: new accounts wait for review', () => {
  let first: SpotJson;
  test('a new account’s first spot is pending: not public, in the queue, visible to its owner', async () => {
    first = await h.spot(owner, { name: 'Newcomer view', location: { lat: 1, lng: 1 } });
    assert.equal(first.status, 'pending');
    assert.match(first.moderationReason ?? '', /New account/);
    assertProblem(await get(`/${first.id}`), 404, 'SPOT_NOT_FOUND');
    assert.ok(!(await h.list('near=1,1&radiusM=1000')).items.some((s) => s.id === first.id));
    const mine = await get(`/${first.id}`, owner.headers);
    assert.equal(mine.json<SpotJson>().status, 'pending');
    const queue = await get('/moderation/queue', mod.headers);
    assert.equal(queue.statusCode, 200, queue.body);
    assert.ok(queue.json<QueueJson>().items.some((s) => s.id === first.id));
    assertProblem(await get('/moderation/queue', owner.headers), 403, 'FORBIDDEN');
    assert.equal((await get('/moderation/queue')).statusCode, 401);
  });

  test('approved (restored), it is public, and the account is trusted from then on', async () => {
    const res = await post(`/${first.id}/restore`, mod.headers);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json<SpotJson>().status, 'visible');
    assert.equal((await get(`/${first.id}`)).statusCode, 200);
    const second = await h.spot(owner, { name: 'Trusted view', location: { lat: 1, lng: 1.001 } });
    assert.equal(second.status, 'visible');
    assert.ok(
      !(await get('/moderation/queue', mod.headers))
        .json<QueueJson>()
        .items.some((s) => s.id === first.id),
    );
  });
});

describe('spots: a young account waits for review whatever its public spots', () => {
  test('public spots do not make an account younger than SPOTS_TRUSTED_AFTER_DAYS trusted; its age then does', async () => {
    const young = await h.user();
    const first = await h.spot(young, { name: 'Young view', location: { lat: 3, lng: 3 } });
    assert.equal(first.status, 'pending');
    const restored = await post(`/${first.id}/restore`, mod.headers);
    assert.equal(restored.json<SpotJson>().status, 'visible', restored.body);
    // One public spot (SPOTS_TRUSTED_AFTER), but a day old at most: still reviewed.
    const second = await h.spot(young, { name: 'Young view 2', location: { lat: 3, lng: 3.001 } });
    assert.equal(second.status, 'pending');
    assert.match(second.moderationReason ?? '', /New account/);
    assertProblem(await get(`/${second.id}`), 404, 'SPOT_NOT_FOUND');
    // Just under a day old: still reviewed; two days old: trusted.
    await h.tdb.database.pool.query(
      `update gw_user set created_at = now() - interval '23 hours' where id = $1`,
      [young.user.id],
    );
    const third = await h.spot(young, { name: 'Young view 3', location: { lat: 3, lng: 3.002 } });
    assert.equal(third.status, 'pending');
    await age(young, 2);
    const fourth = await h.spot(young, { name: 'Grown view', location: { lat: 3, lng: 3.003 } });
    assert.equal(fourth.status, 'visible');
    assert.equal((await get(`/${fourth.id}`)).statusCode, 200);
  });

  test('an old account with no public spot still waits (both conditions hold for trust)', async () => {
    const quiet = await h.user();
    await age(quiet, 30);
    const spot = await h.spot(quiet, { name: 'Old but new here', location: { lat: 4, lng: 4 } });
    assert.equal(spot.status, 'pending');
  });
});

describe('spots: reports', () => {
  let spot: SpotJson;
  let r1: SpotsUser;
  let r2: SpotsUser;
  before(async () => {
    spot = await h.spot(owner, { name: 'Reported mural', location: { lat: 2, lng: 2 } });
    assert.equal(spot.status, 'visible');
    r1 = await h.user();
    r2 = await h.user();
  });

  test('one report per user; the owner cannot report; anonymous cannot', async () => {
    const first = await post(`/${spot.id}/reports`, r1.headers, { reason: 'Spam link' });
    assert.equal(first.statusCode, 201, first.body);
    assert.deepEqual(first.json(), { spotId: spot.id, reported: true, hidden: false });
    const again = await post(`/${spot.id}/reports`, r1.headers, { reason: 'Spam link' });
    assert.equal(again.statusCode, 200);
    assert.deepEqual(again.json(), { spotId: spot.id, reported: false, hidden: false });
    assertProblem(
      await post(`/${spot.id}/reports`, owner.headers, { reason: 'x' }),
      422,
      'CANNOT_REPORT_OWN_SPOT',
    );
    assert.equal((await post(`/${spot.id}/reports`, {}, { reason: 'x' })).statusCode, 401);
    assertProblem(
      await post(`/${spot.id}/reports`, r2.headers, { reason: '' }),
      422,
      'VALIDATION_FAILED',
    );
    assertProblem(
      await post(`/${spot.id}/reports`, r2.headers, { reason: 'a\u0000' }),
      422,
      'VALIDATION_FAILED',
    );
    assert.equal((await get(`/${spot.id}`)).statusCode, 200, 'one report does not hide');
  });

  test('the threshold takes it out of public reads pending review, with an event', async () => {
    const res = await post(`/${spot.id}/reports`, r2.headers, { reason: 'Not a real place' });
    assert.equal(res.statusCode, 201, res.body);
    assert.deepEqual(res.json(), { spotId: spot.id, reported: true, hidden: true });
    assertProblem(await get(`/${spot.id}`), 404, 'SPOT_NOT_FOUND');
    assert.ok(!(await h.list('near=2,2&radiusM=1000')).items.some((s) => s.id === spot.id));
    const mine = (await get(`/${spot.id}`, owner.headers)).json<SpotJson>();
    assert.equal(mine.status, 'pending');
    assert.equal(mine.moderationReason, 'Reported by 2 users; pending review.');
    const queued = (await get('/moderation/queue', mod.headers))
      .json<QueueJson>()
      .items.find((s) => s.id === spot.id);
    assert.equal(queued?.reportCount, 2);
    assert.deepEqual(queued?.reports, ['Spam link', 'Not a real place']);
    const { rows } = await h.tdb.database.pool.query<{ data: unknown }>(
      `select data from gw_event where type = 'spots.spot.hidden' and subject_id = $1`,
      [spot.id],
    );
    assert.deepEqual(
      rows.map((r) => r.data),
      [{ spotId: spot.id, by: 'reports', reason: 'Reported by 2 users; pending review.' }],
    );
  });

  test('restored, its reports are resolved: reporting starts again from zero', async () => {
    assert.equal((await post(`/${spot.id}/restore`, mod.headers)).statusCode, 200);
    assert.equal((await get(`/${spot.id}`)).statusCode, 200);
    const res = await post(`/${spot.id}/reports`, r1.headers, { reason: 'Still spam' });
    assert.deepEqual(res.json(), { spotId: spot.id, reported: true, hidden: false });
    assert.equal((await get(`/${spot.id}`)).statusCode, 200);
  });

  test('reports are rate-limited per user (SPOTS_REPORTS_PER_HOUR)', async () => {
    const reporter = await h.user();
    const targets: SpotJson[] = [];
    for (let i = 0; i < 4; i++)
      targets.push(
        await h.spot(mod, { name: `target ${String(i)}`, location: { lat: 3, lng: 3 } }),
      );
    const answers: number[] = [];
    for (const t of targets)
      answers.push((await post(`/${t.id}/reports`, reporter.headers, { reason: 'x' })).statusCode);
    assert.deepEqual(answers, [201, 201, 201, 429]);
    const { rows } = await h.tdb.database.pool.query<{ n: number }>(
      `select count(*)::int as n from spots_report r where r.reporter_id = $1`,
      [reporter.user.id],
    );
    assert.equal(rows[0]?.n, 3);
  });
});

describe('spots: creation is rate-limited per user', () => {
  test('past SPOTS_CREATE_PER_HOUR: 429 with Retry-After, nothing stored', async () => {
    const maker = await h.user();
    const statuses: number[] = [];
    let last;
    for (let i = 0; i < 5; i++) {
      last = await post('', maker.headers, {
        name: `burst ${String(i)}`,
        category: 'other',
        location: { lat: 4, lng: 4 },
      });
      statuses.push(last.statusCode);
    }
    assert.deepEqual(statuses, [201, 201, 201, 201, 429]);
    assert.ok(last);
    assertProblem(last, 429, 'RATE_LIMITED');
    assert.ok(Number(last.headers['retry-after']) > 0);
    const { rows } = await h.tdb.database.pool.query<{ n: number }>(
      `select count(*)::int as n from spots_spot where owner_id = $1`,
      [maker.user.id],
    );
    assert.equal(rows[0]?.n, 4);
  });
});
