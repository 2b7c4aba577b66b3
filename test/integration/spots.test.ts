// The spots app (issue 17) through HTTP against real PostgreSQL: the contract, nearby search,
// map viewports, full-text and fuzzy search, hidden spots, favourites and popularity, caching,
// events, and every bad input the issue lists.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { eventually } from '../helpers/jobs-harness.ts';
import { assertProblem } from '../helpers/problem.ts';
import {
  startSpotsHarness,
  type SpotJson,
  type SpotPageJson,
  type SpotsHarness,
  type SpotsUser,
} from '../helpers/spots.ts';

/** A point `metres` north of (lat, lng) (1° of latitude = 111,195 m on earthdistance's sphere). */
const north = (lat: number, lng: number, metres: number) => ({
  lat: lat + metres / ((6378168 * Math.PI) / 180),
  lng,
});

const EIFFEL = { lat: 48.8584, lng: 2.2945 };

let h: SpotsHarness;
let alice: SpotsUser;
let bob: SpotsUser;
let mod: SpotsUser;

before(async () => {
  h = await startSpotsHarness();
  alice = await h.user();
  bob = await h.user();
  mod = await h.user('moderator');
});
after(() => h?.close());

const get = (url: string, headers: Record<string, string> = {}) =>
  h.app.inject({ method: 'GET', url: `/api/v1/spots${url}`, headers });
const send = (
  method: 'POST' | 'PATCH' | 'PUT' | 'DELETE',
  url: string,
  headers: Record<string, string>,
  payload?: unknown,
) =>
  h.app.inject({
    method,
    url: `/api/v1/spots${url}`,
    headers,
    ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
  });

async function spotCount(): Promise<number> {
  const { rows } = await h.tdb.database.pool.query<{ n: number }>(
    'select count(*)::int as n from spots_spot',
  );
  return rows[0]?.n ?? 0;
}

async function eventsOf(type: string, spotId: string): Promise<Record<string, unknown>[]> {
  const { rows } = await h.tdb.database.pool.query<{ data: Record<string, unknown> }>(
    'select data from gw_event where type = $1 and subject_id = $2 order by id',
    [type, spotId],
  );
  return rows.map((r) => r.data);
}

describe('spots: create, read, change, delete', () => {
  test('a spot is created, read back with an ETag, and answered 304 on a match', async () => {
    const spot = await h.spot(alice, {
      name: 'Pont des Arts at sunrise',
      description: 'The footbridge, looking east.',
      address: 'Pont des Arts, 75006 Paris',
      category: 'bridge',
      tags: ['Sunset', 'sunset', ' SUNSET ', 'Bridge', 'bridge'],
      location: { lat: 48.8583, lng: 2.3375 },
    });
    assert.equal(spot.ownerId, alice.user.id);
    assert.equal(spot.status, 'visible');
    assert.deepEqual(spot.tags, ['sunset', 'bridge']);
    assert.deepEqual(spot.location, { lat: 48.8583, lng: 2.3375 });
    assert.equal(spot.favouriteCount, 0);

    const res = await get(`/${spot.id}`);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.headers['cache-control'], 'public, no-cache');
    const etag = res.headers.etag;
    assert.ok(typeof etag === 'string' && etag.startsWith('"'));
    const body = res.json<SpotJson>();
    assert.equal(body.name, 'Pont des Arts at sunrise');
    assert.deepEqual(body.pictures, []);
    assert.equal(body.moderationReason, undefined, 'the public view carries no moderation');

    const again = await get(`/${spot.id}`, { 'if-none-match': etag });
    assert.equal(again.statusCode, 304);
    assert.equal(again.body, '');
    // No length or type for a body that is not there (a keep-alive client would wait for it).
    assert.ok([undefined, '0'].includes(again.headers['content-length'] as string | undefined));
    // A change makes a new ETag: the old one no longer matches.
    const patched = await send('PATCH', `/${spot.id}`, alice.headers, { name: 'Pont des Arts' });
    assert.equal(patched.statusCode, 200, patched.body);
    const fresh = await get(`/${spot.id}`, { 'if-none-match': etag });
    assert.equal(fresh.statusCode, 200);
    assert.equal(fresh.json<SpotJson>().name, 'Pont des Arts');
    assert.deepEqual(await eventsOf('spots.spot.created', spot.id), [
      {
        spotId: spot.id,
        ownerId: alice.user.id,
        name: 'Pont des Arts at sunrise',
        category: 'bridge',
        lat: 48.8583,
        lng: 2.3375,
        status: 'visible',
      },
    ]);
    assert.deepEqual(await eventsOf('spots.spot.updated', spot.id), [
      { spotId: spot.id, fields: ['name'] },
    ]);
  });

  test('a retried create with the same Idempotency-Key makes one spot', async () => {
    const before = await spotCount();
    const payload = { name: 'Retried', location: { lat: 7, lng: 7 }, category: 'other' };
    const headers = { ...alice.headers, 'idempotency-key': 'spots-create-retry-1' };
    const first = await send('POST', '', headers, payload);
    const again = await send('POST', '', headers, payload);
    assert.equal(first.statusCode, 201, first.body);
    assert.equal(again.statusCode, 201);
    assert.equal(again.headers['idempotent-replayed'], 'true');
    assert.equal(again.json<SpotJson>().id, first.json<SpotJson>().id);
    assert.equal(await spotCount(), before + 1);
  });

  test('creating needs a signed-in user', async () => {
    const res = await send('POST', '', {}, { name: 'x', location: EIFFEL, category: 'other' });
    assert.equal(res.statusCode, 401);
  });

  test('bad coordinates, tags and text are refused and nothing is stored', async () => {
    const before = await spotCount();
    const base = { name: 'Bad', category: 'other' };
    const cases: [string, unknown][] = [
      ['latitude 91', { ...base, location: { lat: 91, lng: 0 } }],
      ['latitude -90.0001', { ...base, location: { lat: -90.0001, lng: 0 } }],
      ['longitude 180.0000001', { ...base, location: { lat: 0, lng: 180.0000001 } }],
      ['longitude as a string', { ...base, location: { lat: 0, lng: '2.3' } }],
      ['no location', base],
      [
        '1,000 tags',
        {
          ...base,
          location: EIFFEL,
          tags: Array.from({ length: 1000 }, (_, i) => `t${String(i)}`),
        },
      ],
      ['a tag of 41 characters', { ...base, location: EIFFEL, tags: ['x'.repeat(41)] }],
      ['NUL in the name', { ...base, name: 'a\u0000b', location: EIFFEL }],
      ['an unknown category', { ...base, category: 'casino', location: EIFFEL }],
    ];
    for (const [what, payload] of cases) {
      const res = await send('POST', '', alice.headers, payload);
      assertProblem(res, 422, 'VALIDATION_FAILED');
      assert.ok(res.statusCode === 422, what);
    }
    // JSON cannot say NaN; 1e309 parses to Infinity, which no bound accepts.
    for (const raw of [
      '{"name":"x","category":"other","location":{"lat":NaN,"lng":0}}',
      '{"name":"x","category":"other","location":{"lat":1e309,"lng":0}}',
    ]) {
      const res = await h.app.inject({
        method: 'POST',
        url: '/api/v1/spots',
        headers: { ...alice.headers, 'content-type': 'application/json' },
        payload: raw,
      });
      assert.ok([400, 422].includes(res.statusCode), `${raw}: ${String(res.statusCode)}`);
      assertProblem(
        res,
        res.statusCode,
        res.statusCode === 400 ? 'MALFORMED_BODY' : 'VALIDATION_FAILED',
      );
    }
    assert.equal(await spotCount(), before);
    // Unknown fields are dropped (the platform strips them): the owner is always the caller.
    const owned = await h.spot(alice, { ownerId: bob.user.id, status: 'hidden' });
    assert.equal(owned.ownerId, alice.user.id);
    assert.equal(owned.status, 'visible');
  });

  test('coordinates are kept to 7 decimals; a subnormal is 0, not a database error', async () => {
    const tiny = await h.spot(alice, { location: { lat: -9e-323, lng: 1.87e-100 } });
    assert.deepEqual(tiny.location, { lat: 0, lng: 0 });
    const fine = await h.spot(alice, { location: { lat: 48.123456789, lng: -0.00000004 } });
    assert.deepEqual(fine.location, { lat: 48.1234568, lng: 0 });
    assert.equal(
      (await h.list('near=0.000000000000001,-0.0000000001&radiusM=1')).items[0]?.id,
      tiny.id,
    );
  });

  test('another user may not change or delete a spot; a moderator may', async () => {
    const spot = await h.spot(alice);
    assertProblem(
      await send('PATCH', `/${spot.id}`, bob.headers, { name: 'Mine' }),
      403,
      'SPOT_NOT_OWNER',
    );
    assertProblem(await send('DELETE', `/${spot.id}`, bob.headers), 403, 'SPOT_NOT_OWNER');
    const byMod = await send('PATCH', `/${spot.id}`, mod.headers, { category: 'monument' });
    assert.equal(byMod.statusCode, 200, byMod.body);
    assert.equal(byMod.json<SpotJson>().category, 'monument');
    assert.equal((await send('DELETE', `/${spot.id}`, alice.headers)).statusCode, 204);
    assertProblem(await get(`/${spot.id}`), 404, 'SPOT_NOT_FOUND');
    assertProblem(await get(`/${spot.id}`, alice.headers), 404, 'SPOT_NOT_FOUND');
    assertProblem(
      await send('PATCH', `/${spot.id}`, alice.headers, { name: 'x' }),
      404,
      'SPOT_NOT_FOUND',
    );
    assert.deepEqual(await eventsOf('spots.spot.updated', spot.id), [
      { spotId: spot.id, fields: ['category'] },
      { spotId: spot.id, fields: ['deleted'] },
    ]);
  });

  test('an unknown or malformed id is 404 or 422', async () => {
    assertProblem(await get('/0190a5c4-7b7e-7000-8000-000000000000'), 404, 'SPOT_NOT_FOUND');
    assertProblem(await get('/not-a-uuid'), 422, 'VALIDATION_FAILED');
  });
});

describe('spots: nearby', () => {
  const centre = { lat: 10.5, lng: 20.5 };
  const ids: Record<string, string> = {};
  before(async () => {
    for (const [name, metres] of [
      ['n0', 0],
      ['n500', 500],
      ['n1500', 1500],
      ['n1999', 1999],
      ['n3000', 3000],
    ] as const) {
      ids[name] = (
        await h.spot(alice, { name, location: north(centre.lat, centre.lng, metres) })
      ).id;
    }
  });

  test('within the radius, nearest first, each with its distance in metres', async () => {
    const page = await h.list(`near=${String(centre.lat)},${String(centre.lng)}&radiusM=2000`);
    assert.deepEqual(
      page.items.map((s) => s.name),
      ['n0', 'n500', 'n1500', 'n1999'],
    );
    const distances = page.items.map((s) => s.distanceM ?? -1);
    for (const [got, want] of distances.map((d, i) => [d, [0, 500, 1500, 1999][i] ?? 0])) {
      assert.ok(
        Math.abs((got ?? 0) - (want ?? 0)) < 1,
        `${String(got)} m, expected ${String(want)}`,
      );
    }
  });

  test('pages of one follow the same order through the cursor, none twice', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: SpotPageJson = await h.list(
        `near=${String(centre.lat)},${String(centre.lng)}&radiusM=5000&limit=1${cursor ? `&cursor=${cursor}` : ''}`,
      );
      seen.push(...page.items.map((s) => s.name));
      cursor = page.page.nextCursor;
    } while (cursor);
    assert.deepEqual(seen, ['n0', 'n500', 'n1500', 'n1999', 'n3000']);
  });

  test('spots at the very same place (a tie in distance) page through the cursor each once, by id', async () => {
    const same = { lat: -33.856784, lng: 151.215297 };
    const made: string[] = [];
    for (let i = 0; i < 5; i++)
      made.push((await h.spot(alice, { name: `tie${String(i)}`, location: same })).id);
    for (const limit of [1, 2, 3]) {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: SpotPageJson = await h.list(
          `near=${String(same.lat)},${String(same.lng)}&radiusM=100&limit=${String(limit)}${cursor ? `&cursor=${cursor}` : ''}`,
        );
        seen.push(...page.items.map((s) => s.id));
        cursor = page.page.nextCursor;
      } while (cursor);
      assert.deepEqual(seen, [...made].sort(), `limit ${String(limit)}`);
    }
  });

  test('a cursor of another listing is refused', async () => {
    const page = await h.list(
      `near=${String(centre.lat)},${String(centre.lng)}&radiusM=5000&limit=1`,
    );
    const res = await get(
      `?near=${String(centre.lat)},${String(centre.lng)}&radiusM=4000&limit=1&cursor=${page.page.nextCursor ?? ''}`,
    );
    assertProblem(res, 400, 'INVALID_CURSOR');
  });

  test('across the antimeridian and at the pole', async () => {
    const east = await h.spot(alice, { name: 'east of 180', location: { lat: -30, lng: 179.99 } });
    const west = await h.spot(alice, { name: 'west of 180', location: { lat: -30, lng: -179.99 } });
    const across = await h.list('near=-30,180&radiusM=5000');
    assert.deepEqual(across.items.map((s) => s.id).sort(), [east.id, west.id].sort());
    const a = await h.spot(alice, { name: 'pole a', location: { lat: 89.999, lng: 0 } });
    const b = await h.spot(alice, { name: 'pole b', location: { lat: 89.999, lng: 180 } });
    const pole = await h.list('near=90,45&radiusM=1000');
    assert.deepEqual(pole.items.map((s) => s.id).sort(), [a.id, b.id].sort());
    for (const s of pole.items) assert.ok(Math.abs((s.distanceM ?? 0) - 111.2) < 1);
  });

  test('bad centres and radii are refused', async () => {
    for (const near of [
      '91,0',
      '-90.5,0',
      '0,180.0000001',
      '0,-181',
      'NaN,0',
      '0,NaN',
      '1e309,0',
      'Infinity,0',
      '1,2,3',
      '1',
      ',',
      '0x10,0',
      ' ,1',
    ]) {
      assertProblem(await get(`?near=${encodeURIComponent(near)}`), 422, 'INVALID_LOCATION');
    }
    assertProblem(await get('?near=0,0&radiusM=0'), 422, 'VALIDATION_FAILED');
    assertProblem(await get('?near=0,0&radiusM=-5'), 422, 'VALIDATION_FAILED');
    assertProblem(await get('?near=0,0&radiusM=1e309'), 422, 'VALIDATION_FAILED');
    assertProblem(await get('?near=0,0&radiusM=NaN'), 422, 'VALIDATION_FAILED');
    assertProblem(await get('?near=0,0&radiusM=20000000'), 422, 'RADIUS_TOO_LARGE');
    assertProblem(await get('?radiusM=100'), 422, 'INVALID_SPOT_QUERY');
    assertProblem(await get('?sort=distance'), 422, 'INVALID_SPOT_QUERY');
    assertProblem(await get('?near=0,0&bbox=0,0,1,1'), 422, 'INVALID_SPOT_QUERY');
  });
});

describe('spots: map viewport (bbox)', () => {
  let inside: SpotJson;
  let fiji: SpotJson;
  let samoa: SpotJson;
  before(async () => {
    inside = await h.spot(alice, { name: 'box a', location: { lat: -40.5, lng: -60.5 } });
    await h.spot(alice, { name: 'box b', location: { lat: -40.6, lng: -60.6 } });
    fiji = await h.spot(alice, { name: 'fiji', location: { lat: -17.7, lng: 178.0 } });
    samoa = await h.spot(alice, { name: 'samoa', location: { lat: -13.8, lng: -172.1 } });
  });

  test('the spots in the box, capped with a truncated flag', async () => {
    const page = await h.list('bbox=-61,-41,-60,-40');
    assert.deepEqual(page.items.map((s) => s.name).sort(), ['box a', 'box b']);
    assert.equal(page.truncated, false);
    const capped = await h.list('bbox=-61,-41,-60,-40&limit=1');
    assert.equal(capped.items.length, 1);
    assert.equal(capped.truncated, true);
    assertProblem(await get('?bbox=-61,-41,-60,-40&limit=501'), 422, 'VALIDATION_FAILED');
    assertProblem(await get('?near=0,0&limit=101'), 422, 'INVALID_SPOT_QUERY');
  });

  test('a box crossing the antimeridian (minLng > maxLng) holds both sides and nothing between', async () => {
    const page = await h.list('bbox=170,-20,-170,-10');
    assert.deepEqual(page.items.map((s) => s.id).sort(), [fiji.id, samoa.id].sort());
    // The same numbers read as a box from -170 to 170 hold neither.
    const wide = await h.list('bbox=-170,-20,170,-10');
    assert.ok(!wide.items.some((s) => s.id === fiji.id || s.id === samoa.id));
  });

  test('inverted and malformed boxes are refused', async () => {
    for (const bbox of [
      '-61,-40,-60,-41',
      '0,0,1',
      '0,0,1,1,1',
      '0,91,1,92',
      '-181,0,0,1',
      '0,0,180.0000001,1',
      'NaN,0,1,1',
      '1e309,0,1,1',
    ]) {
      assertProblem(await get(`?bbox=${encodeURIComponent(bbox)}`), 422, 'INVALID_LOCATION');
    }
  });

  test('a cached viewport sees a new spot, a moved spot and a hidden spot at once', async () => {
    const first = await h.list('bbox=-61,-41,-60,-40');
    assert.equal(first.items.length, 2);
    const added = await h.spot(bob, { name: 'box c', location: { lat: -40.7, lng: -60.7 } });
    assert.equal((await h.list('bbox=-61,-41,-60,-40')).items.length, 3);
    const moved = await send('PATCH', `/${added.id}`, bob.headers, {
      location: { lat: 10, lng: 10 },
    });
    assert.equal(moved.statusCode, 200);
    assert.equal((await h.list('bbox=-61,-41,-60,-40')).items.length, 2);
    const hidden = await send('POST', `/${inside.id}/hide`, mod.headers, { reason: 'spam' });
    assert.equal(hidden.statusCode, 200, hidden.body);
    assert.deepEqual(
      (await h.list('bbox=-61,-41,-60,-40')).items.map((s) => s.name),
      ['box b'],
    );
    assert.equal((await send('POST', `/${inside.id}/restore`, mod.headers)).statusCode, 200);
    assert.equal((await h.list('bbox=-61,-41,-60,-40')).items.length, 2);
  });
});

describe('spots: text search', () => {
  const ids: Record<string, string> = {};
  before(async () => {
    const at = { lat: -33.9, lng: 151.2 };
    const make = async (key: string, body: Record<string, unknown>) => {
      ids[key] = (await h.spot(bob, { location: at, ...body })).id;
    };
    await make('bridge', { name: 'Harbour skybridge', tags: ['sunrise'], category: 'bridge' });
    await make('cafe', { name: 'Café Zoë mural', description: 'Painted wall', category: 'mural' });
    await make('tower', { name: 'Observation tower', description: 'Views', category: 'viewpoint' });
    await make('desc', {
      name: 'Quiet corner',
      description: 'A lighthouse far away',
      category: 'other',
    });
    await make('name', { name: 'Lighthouse steps', category: 'other' });
    await make('addr', { name: 'Old stairs', address: '1 Lighthouse Road', category: 'other' });
    await make('tag', { name: 'Rocks', tags: ['lighthouse'], category: 'nature' });
  });

  test('stemmed, accent-blind, weighted name > tags > description > address', async () => {
    const bridges = await h.list('q=skybridges');
    assert.equal(bridges.search, 'text');
    assert.deepEqual(
      bridges.items.map((s) => s.id),
      [ids.bridge],
    );
    assert.deepEqual(
      (await h.list('q=cafe%20zoe')).items.map((s) => s.id),
      [ids.cafe],
    );
    assert.deepEqual(
      (await h.list('q=CAFÉ')).items.map((s) => s.id),
      [ids.cafe],
    );
    const ranked = await h.list('q=lighthouse');
    assert.deepEqual(
      ranked.items.map((s) => s.id),
      [ids.name, ids.tag, ids.desc, ids.addr],
    );
  });

  test('a prefix finds the word it starts; a typo falls back to trigram similarity', async () => {
    assert.deepEqual(
      (await h.list('q=skybr')).items.map((s) => s.id),
      [ids.bridge],
    );
    const typo = await h.list('q=Obsrvation%20towr');
    assert.equal(typo.search, 'fuzzy');
    assert.deepEqual(
      typo.items.map((s) => s.id),
      [ids.tower],
    );
  });

  test('near given, nearer matches rank first', async () => {
    const far = await h.spot(alice, { name: 'Lighthouse far', location: { lat: 0, lng: 0.05 } });
    const near = await h.spot(alice, { name: 'Lighthouse near', location: { lat: 0, lng: 0.001 } });
    const page = await h.list('q=lighthouse&near=0,0&radiusM=50000');
    assert.deepEqual(
      page.items.map((s) => s.id),
      [near.id, far.id],
    );
    assert.ok((page.items[0]?.distanceM ?? 0) < 200);
  });

  test('hostile and empty queries: 422 or nothing found, never an error', async () => {
    // 10,000 characters do not fit in a URL the server reads (MAX_URL_LENGTH); 201 fit but are
    // longer than a query may be.
    assertProblem(await get(`?q=${'a'.repeat(10_000)}`), 414, 'URI_TOO_LONG');
    assertProblem(await get(`?q=${'a'.repeat(201)}`), 422, 'VALIDATION_FAILED');
    assertProblem(await get('?q=a%00b'), 422, 'VALIDATION_FAILED');
    assertProblem(await get('?q='), 422, 'VALIDATION_FAILED');
    const stop = await h.list('q=the%20of%20and%20a');
    assert.deepEqual(stop, {
      items: [],
      page: { limit: 20, nextCursor: null, hasMore: false },
      search: 'none',
    });
    for (const q of [
      '&|!:*()',
      "bridge & !(sky:*) | 'x",
      '!!!',
      '((',
      'skybr:*',
      '"unclosed',
      '-skybridge',
      '<->',
      '\\',
    ]) {
      const res = await get(`?q=${encodeURIComponent(q)}`);
      assert.equal(res.statusCode, 200, `${q}: ${res.body}`);
    }
    // Syntax is words here: `skybr:*` is the word skybr (a prefix), not tsquery syntax.
    assert.deepEqual(
      (await h.list(`q=${encodeURIComponent('skybr:*')}`)).items.map((s) => s.id),
      [ids.bridge],
    );
    // `-word` excludes, as on a search engine.
    assert.ok(!(await h.list('q=lighthouse%20-steps')).items.some((s) => s.id === ids.name));
  });

  test('text and fuzzy results page through the cursor, each once, best first', async () => {
    const made: string[] = [];
    for (const [i, name] of [
      'Wombatish',
      'Wombatish wombatish',
      'Wombatish den',
      'Old wombatish',
      'Wombatish hill',
    ].entries())
      made.push(
        (await h.spot(alice, { name, description: 'x'.repeat(i), location: { lat: 5, lng: 5 } }))
          .id,
      );
    for (const [q, mode] of [
      ['wombatish', 'text'],
      ['wombatsh', 'fuzzy'],
    ] as const) {
      const seen: string[] = [];
      let cursor: string | null = null;
      let first: SpotPageJson | undefined;
      do {
        const page: SpotPageJson = await h.list(
          `q=${q}&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
        );
        first ??= page;
        assert.equal(page.search, mode);
        seen.push(...page.items.map((s) => s.id));
        cursor = page.page.nextCursor;
      } while (cursor);
      assert.deepEqual([...seen].sort(), [...made].sort(), q);
      // One page with everything answers the same order.
      assert.deepEqual(
        (await h.list(`q=${q}&limit=20`)).items.map((s) => s.id),
        seen,
        q,
      );
      assert.equal(first?.items.length, 2);
    }
  });

  test('filters by category, tag and owner', async () => {
    assert.deepEqual(
      (await h.list('q=lighthouse&category=nature')).items.map((s) => s.id),
      [ids.tag],
    );
    assert.ok((await h.list('tag=Lighthouse')).items.some((s) => s.id === ids.tag));
    const mine = await h.list(`owner=${bob.user.id}&limit=100`);
    assert.ok(mine.items.length >= 7);
    assert.ok(mine.items.every((s) => s.ownerId === bob.user.id));
  });
});

describe('spots: hidden spots', () => {
  let spot: SpotJson;
  const where = { lat: 60.1, lng: 24.9 };
  before(async () => {
    spot = await h.spot(alice, {
      name: 'Zanzibarish secret mural',
      category: 'mural',
      location: where,
    });
    const hide = await send('POST', `/${spot.id}/hide`, mod.headers, {
      reason: 'Private property',
    });
    assert.equal(hide.statusCode, 200, hide.body);
    assert.equal(hide.json<SpotJson>().status, 'hidden');
  });

  const listings = () => [
    `owner=${alice.user.id}&limit=100`,
    'q=zanzibarish',
    `near=${String(where.lat)},${String(where.lng)}&radiusM=1000`,
    `bbox=24,60,25,61`,
    'category=mural&limit=100',
    'limit=100',
  ];

  test('to a stranger and anonymously: 404 by id, absent from every listing', async () => {
    for (const headers of [{}, bob.headers]) {
      assertProblem(await get(`/${spot.id}`, headers), 404, 'SPOT_NOT_FOUND');
      assertProblem(await get(`/${spot.id}/pictures`, headers), 404, 'SPOT_NOT_FOUND');
      for (const query of listings()) {
        const page = await h.list(query, headers);
        assert.ok(!page.items.some((s) => s.id === spot.id), query);
      }
    }
    assertProblem(await send('PUT', `/${spot.id}/favourite`, bob.headers), 404, 'SPOT_NOT_FOUND');
    assertProblem(
      await send('POST', `/${spot.id}/reports`, bob.headers, { reason: 'x' }),
      404,
      'SPOT_NOT_FOUND',
    );
    assertProblem(
      await send('PATCH', `/${spot.id}`, bob.headers, { name: 'x' }),
      404,
      'SPOT_NOT_FOUND',
    );
  });

  test('an ETag from before the hiding gets a 404, not a 304', async () => {
    const other = await h.spot(bob, { name: 'Soon hidden', location: where });
    const seen = await get(`/${other.id}`);
    const etag = String(seen.headers.etag);
    assert.equal((await get(`/${other.id}`, { 'if-none-match': etag })).statusCode, 304);
    assert.equal(
      (await send('POST', `/${other.id}/hide`, mod.headers, { reason: 'x' })).statusCode,
      200,
    );
    assertProblem(await get(`/${other.id}`, { 'if-none-match': etag }), 404, 'SPOT_NOT_FOUND');
  });

  test('to its owner: by id with the reason, in their own list; public searches stay public', async () => {
    const res = await get(`/${spot.id}`, alice.headers);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.headers['cache-control'], 'private, no-store');
    const body = res.json<SpotJson>();
    assert.equal(body.status, 'hidden');
    assert.equal(body.moderationReason, 'Private property');
    const own = await h.list(`owner=${alice.user.id}&limit=100`, alice.headers);
    const mine = own.items.find((s) => s.id === spot.id);
    assert.equal(mine?.status, 'hidden');
    assert.equal(mine?.moderationReason, 'Private property');
    // Search, nearby and viewports answer the same to everyone (and are cached so): not there.
    for (const query of listings().slice(1)) {
      const page = await h.list(query, alice.headers);
      assert.ok(!page.items.some((s) => s.id === spot.id), query);
    }
    // A moderator sees it by id too.
    assert.equal((await get(`/${spot.id}`, mod.headers)).json<SpotJson>().status, 'hidden');
    assert.deepEqual(await eventsOf('spots.spot.hidden', spot.id), [
      { spotId: spot.id, by: 'moderator', reason: 'Private property' },
    ]);
  });

  test('restored, it is public again everywhere', async () => {
    const other = await h.spot(alice, {
      name: 'Zanzibarish twin',
      location: where,
      category: 'mural',
    });
    assert.equal(
      (await send('POST', `/${other.id}/hide`, mod.headers, { reason: 'dup' })).statusCode,
      200,
    );
    assert.equal((await send('POST', `/${other.id}/restore`, mod.headers)).statusCode, 200);
    assert.equal((await get(`/${other.id}`)).statusCode, 200);
    assert.ok((await h.list('q=zanzibarish')).items.some((s) => s.id === other.id));
    assert.ok(
      (await h.list(`near=${String(where.lat)},${String(where.lng)}&radiusM=1000`)).items.some(
        (s) => s.id === other.id,
      ),
    );
  });

  test('hide and restore need spots:moderate', async () => {
    assertProblem(await send('POST', `/${spot.id}/restore`, alice.headers), 403, 'FORBIDDEN');
    assertProblem(
      await send('POST', `/${spot.id}/hide`, bob.headers, { reason: 'x' }),
      403,
      'FORBIDDEN',
    );
    assert.equal((await send('POST', `/${spot.id}/restore`, {})).statusCode, 401);
  });
});

describe('spots: favourites and popularity', () => {
  test('counted by the job, sorted popular with a stable keyset, listed for the caller', async () => {
    const at = { lat: -22.9, lng: -43.2 };
    const a = await h.spot(alice, { name: 'pop a', location: at });
    const b = await h.spot(alice, { name: 'pop b', location: at });
    const c = await h.spot(alice, { name: 'pop c', location: at });
    const d = await h.spot(alice, { name: 'pop d', location: at });
    const fans = [bob, mod, await h.user()];
    for (const fan of fans)
      assert.equal((await send('PUT', `/${b.id}/favourite`, fan.headers)).statusCode, 204);
    // Twice is once.
    assert.equal((await send('PUT', `/${b.id}/favourite`, bob.headers)).statusCode, 204);
    assert.equal((await send('PUT', `/${c.id}/favourite`, bob.headers)).statusCode, 204);
    await eventually('favourite counts', async () => {
      const bb = (await get(`/${b.id}`)).json<SpotJson>();
      const cc = (await get(`/${c.id}`)).json<SpotJson>();
      return bb.favouriteCount === 3 && cc.favouriteCount === 1;
    });
    const bbox = 'bbox=-43.3,-23,-43.1,-22.8';
    const order = (await h.list(`${bbox}&sort=popular`)).items.map((s) => s.id);
    assert.deepEqual(order.slice(0, 2), [b.id, c.id]);
    // a and d tie at 0: the id decides (descending), on one page and across pages alike.
    assert.deepEqual(order.slice(2), [a.id, d.id].sort().reverse());
    const paged: string[] = [];
    let cursor: string | null = null;
    do {
      const page: SpotPageJson = await h.list(
        `${bbox}&sort=popular&limit=1${cursor ? `&cursor=${cursor}` : ''}`,
      );
      paged.push(...page.items.map((s) => s.id));
      cursor = page.page.nextCursor;
    } while (cursor);
    assert.deepEqual(paged, order);

    const favs = await get('/favourites', bob.headers);
    assert.equal(favs.statusCode, 200, favs.body);
    assert.deepEqual(
      favs
        .json<SpotPageJson>()
        .items.map((s) => s.id)
        .slice(0, 2),
      [c.id, b.id],
    );
    assert.equal((await get('/favourites')).statusCode, 401);

    assert.equal((await send('DELETE', `/${b.id}/favourite`, bob.headers)).statusCode, 204);
    assert.equal((await send('DELETE', `/${b.id}/favourite`, bob.headers)).statusCode, 204);
    await eventually(
      'recount after unfavourite',
      async () => (await get(`/${b.id}`)).json<SpotJson>().favouriteCount === 2,
    );
    // The counter row is written by the job only: a favourite never touches the spot's row.
    const { rows } = await h.tdb.database.pool.query<{ n: number }>(
      `select count(*)::int as n from spots_favourite where spot_id = $1`,
      [b.id],
    );
    assert.equal(rows[0]?.n, 2);
  });

  test('concurrent favourites and unfavourites all end up counted', async () => {
    const spot = await h.spot(alice, { name: 'busy', location: { lat: -22.95, lng: -43.21 } });
    const fans = await Promise.all(Array.from({ length: 12 }, () => h.user()));
    // Everyone at once, twice over, while the recount job runs.
    for (let round = 0; round < 2; round++)
      await Promise.all(fans.map((f) => send('PUT', `/${spot.id}/favourite`, f.headers)));
    await Promise.all(
      fans.slice(0, 4).map((f) => send('DELETE', `/${spot.id}/favourite`, f.headers)),
    );
    await eventually(
      'the counter at 8',
      async () => (await get(`/${spot.id}`)).json<SpotJson>().favouriteCount === 8,
    );
  });

  test('favouriting an unknown spot is 404', async () => {
    assertProblem(
      await send('PUT', '/0190a5c4-7b7e-7000-8000-000000000001/favourite', bob.headers),
      404,
      'SPOT_NOT_FOUND',
    );
  });
});

describe('spots: in the OpenAPI document', () => {
  test('every route under /api/v1/spots, tagged spots, with its error statuses', async () => {
    const doc = (await h.app.inject({ method: 'GET', url: '/openapi.json' })).json<{
      paths: Record<
        string,
        Record<string, { tags?: string[]; responses: Record<string, unknown> }>
      >;
    }>();
    const paths = Object.keys(doc.paths).filter((p) => p.startsWith('/api/v1/spots'));
    assert.deepEqual(paths.sort(), [
      '/api/v1/spots',
      '/api/v1/spots/favourites',
      '/api/v1/spots/moderation/queue',
      '/api/v1/spots/{id}',
      '/api/v1/spots/{id}/favourite',
      '/api/v1/spots/{id}/hide',
      '/api/v1/spots/{id}/pictures',
      '/api/v1/spots/{id}/pictures/{pictureId}',
      '/api/v1/spots/{id}/reports',
      '/api/v1/spots/{id}/restore',
    ]);
    const list = doc.paths['/api/v1/spots']?.get;
    assert.deepEqual(list?.tags, ['spots']);
    assert.ok(list?.responses['422']);
    assert.ok(doc.paths['/api/v1/spots/{id}']?.get?.responses['304']);
  });
});
