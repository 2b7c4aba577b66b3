// The spots app's two geo engines (spots.geo.ts): `earthdistance` (contrib, every PostgreSQL) and
// PostGIS (when the server has it at migration, `202612090100_spots_postgis`). The same spots in
// two databases, one app on each engine, the same queries: the same pages in the same order, the
// same distances, radius edges, the antimeridian and the poles included. `auto` picks PostGIS
// when its structures are there and earthdistance otherwise. Skipped where the PostgreSQL server
// has no PostGIS (the embedded one): the rest of the spots tests cover earthdistance there.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { explainList } from '../../src/apps/spots/spots.repository.ts';
import { adminQuery } from '../helpers/db.ts';
import { startSpotsHarness, type SpotPageJson, type SpotsHarness } from '../helpers/spots.ts';

const { rows: postgisRows } = await adminQuery(
  `select exists (select 1 from pg_available_extensions where name = 'postgis') as ok`,
);
const available = (postgisRows[0] as { ok?: boolean } | undefined)?.ok === true;
// CI installs PostGIS (`.ci/run` sets REQUIRE_POSTGIS=1): there, its absence is a failure.
if (!available && process.env.REQUIRE_POSTGIS === '1')
  throw new Error('REQUIRE_POSTGIS=1 but the PostgreSQL server has no PostGIS');
const skip = available
  ? false
  : 'PostGIS is not on this PostgreSQL server (the embedded one has none)';

/** A deterministic generator (the same spots in both databases, every run). */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

interface Seed {
  id: string;
  name: string;
  lat: number;
  lng: number;
}

/** Spots in Paris, across the antimeridian, around the north pole, on radius edges, and spread. */
function seeds(): Seed[] {
  const r = random(42);
  const out: Seed[] = [];
  const add = (name: string, lat: number, lng: number) =>
    out.push({ id: randomUUID(), name, lat: Math.round(lat * 1e6) / 1e6, lng });
  for (let i = 0; i < 150; i++)
    add(
      `Paris harbour view ${String(i)}`,
      48.8566 + (r() - 0.5) * 0.1,
      2.3522 + (r() - 0.5) * 0.15,
    );
  for (let i = 0; i < 60; i++) {
    const lng = 179.7 + r() * 0.6;
    add(`Date line view ${String(i)}`, -17 + (r() - 0.5) * 0.6, lng > 180 ? lng - 360 : lng);
  }
  for (let i = 0; i < 40; i++) add(`Polar view ${String(i)}`, 89.5 + r() * 0.5, r() * 360 - 180);
  for (let i = 0; i < 100; i++) add(`World view ${String(i)}`, r() * 170 - 85, r() * 360 - 180);
  // Straddling 1 km from the centre of Paris, a few metres either side, due north: a sphere's
  // metres are the same on both engines, so each is in or out on both.
  for (const m of [990, 995, 999, 1001, 1005, 1010])
    add(`Edge ${String(m)}`, 48.8566 + m / 111_320, 2.3522);
  // Exact ties of distance (the same point twice): ordered by id on both.
  for (let i = 0; i < 3; i++) add(`Twin ${String(i)}`, 48.86, 2.36);
  return out;
}

async function insert(h: SpotsHarness, ownerId: string, spots: Seed[]): Promise<void> {
  await h.tdb.database.pool.query(
    `insert into spots_spot (id, owner_id, name, category, lat, lng, favourite_count)
     select id, $1, name, 'viewpoint', lat, lng, 0
       from unnest($2::uuid[], $3::text[], $4::float8[], $5::float8[]) as t(id, name, lat, lng)`,
    [
      ownerId,
      spots.map((s) => s.id),
      spots.map((s) => s.name),
      spots.map((s) => s.lat),
      spots.map((s) => s.lng),
    ],
  );
  await h.tdb.database.pool.query('analyze spots_spot');
}

/** Every page of a listing: ids and distances in order. */
async function walk(h: SpotsHarness, query: string, limit: number) {
  const items: { id: string; distanceM: number | null }[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page: SpotPageJson = await h.list(
      `${query}&limit=${String(limit)}${cursor ? `&cursor=${cursor}` : ''}`,
    );
    items.push(...page.items.map((s) => ({ id: s.id, distanceM: s.distanceM ?? null })));
    cursor = page.page.nextCursor;
    pages += 1;
  } while (cursor && pages < 100);
  return items;
}

describe('spots: earthdistance and PostGIS answer the same', { skip }, () => {
  let earth: SpotsHarness;
  let postgis: SpotsHarness;
  const spots = seeds();
  const byName = new Map(spots.map((s) => [s.id, s.name]));

  before(async () => {
    earth = await startSpotsHarness({ SPOTS_GEO: 'earthdistance' });
    postgis = await startSpotsHarness({ SPOTS_GEO: 'postgis' });
    const owner = randomUUID();
    await insert(earth, owner, spots);
    await insert(postgis, owner, spots);
  });
  after(async () => {
    await earth?.close();
    await postgis?.close();
  });

  const queries = [
    ['Paris, 2 km, nearest first', 'near=48.8566,2.3522&radiusM=2000', 7],
    ['Paris, 1 km: the edge spots', 'near=48.8566,2.3522&radiusM=1000', 50],
    ['the antimeridian, 50 km', 'near=-17,180&radiusM=50000', 9],
    ['the antimeridian from the west', 'near=-17,-179.9&radiusM=30000', 9],
    ['the north pole, 50 km', 'near=90,0&radiusM=50000', 8],
    ['Paris, 50 km, newest', 'near=48.8566,2.3522&radiusM=50000&sort=newest', 40],
    ['Paris, text and distance', 'near=48.8566,2.3522&radiusM=20000&q=harbour', 11],
  ] as const;

  for (const [name, query, limit] of queries) {
    test(`${name}: the same spots, in the same order, at the same distances`, async () => {
      const a = await walk(earth, query, limit);
      const b = await walk(postgis, query, limit);
      assert.ok(a.length > 0, `${name}: no spot found`);
      assert.deepEqual(
        b.map((s) => byName.get(s.id)),
        a.map((s) => byName.get(s.id)),
      );
      for (const [i, s] of a.entries()) {
        const other = b[i]?.distanceM ?? NaN;
        assert.ok(
          Math.abs((s.distanceM ?? NaN) - other) < 1e-6 * Math.max(1, s.distanceM ?? 0),
          `${name}: ${String(s.distanceM)} vs ${String(other)} m`,
        );
      }
    });
  }

  test('the radius edge: in at 999 m, out at 1,001 m, on both', async () => {
    for (const h of [earth, postgis]) {
      const names = (await walk(h, 'near=48.8566,2.3522&radiusM=1000', 100)).map((s) =>
        byName.get(s.id),
      );
      assert.ok(names.includes('Edge 999') && names.includes('Edge 995'), names.join());
      assert.ok(!names.includes('Edge 1001') && !names.includes('Edge 1005'), names.join());
    }
  });

  test('each app reads its own index', async () => {
    const near = { near: { lat: 48.8566, lng: 2.3522, radiusM: 2000 } };
    const plan = async (h: SpotsHarness, geo: 'earthdistance' | 'postgis') =>
      explainList(h.tdb.database.db as never, { ...near, geo }, 'distance', 20);
    assert.match(await plan(postgis, 'postgis'), /spots_spot_geog_idx/);
    assert.match(await plan(earth, 'earthdistance'), /spots_spot_earth_idx/);
  });

  test('auto: PostGIS when the migration installed it, earthdistance once it is gone', async () => {
    const auto = await startSpotsHarness({ SPOTS_GEO: 'auto' });
    try {
      await insert(auto, randomUUID(), spots);
      const scans = async () => {
        const { rows } = await auto.tdb.database.pool.query<{ n: string }>(
          `select coalesce(sum(idx_scan), 0)::text as n from pg_stat_user_indexes
            where indexrelname = 'spots_spot_geog_idx'`,
        );
        return Number(rows[0]?.n ?? 0);
      };
      const before = await scans();
      const expected = await walk(earth, 'near=48.8566,2.3522&radiusM=2000', 20);
      assert.deepEqual(await walk(auto, 'near=48.8566,2.3522&radiusM=2000', 20), expected);
      // Statistics reach pg_stat_user_indexes within a second or so of the transaction.
      let after = await scans();
      for (let i = 0; i < 40 && after === before; i++) {
        await new Promise((r) => setTimeout(r, 100));
        after = await scans();
      }
      assert.ok(after > before, 'the PostGIS index was read');
      // Without the PostGIS structures (a server without PostGIS), a new process answers with
      // earthdistance: the same page.
      const fresh = await startSpotsHarness({ SPOTS_GEO: 'auto' });
      try {
        await fresh.tdb.database.pool.query(
          'drop function spots_geog(double precision, double precision) cascade',
        );
        await insert(fresh, randomUUID(), spots);
        assert.deepEqual(
          (await walk(fresh, 'near=48.8566,2.3522&radiusM=2000', 20)).map((s) => s.id),
          expected.map((s) => s.id),
        );
      } finally {
        await fresh.close();
      }
    } finally {
      await auto.close();
    }
  });

  test('SPOTS_GEO=postgis without PostGIS fails loudly, not with earthdistance', async () => {
    const h = await startSpotsHarness({ SPOTS_GEO: 'postgis' });
    try {
      await h.tdb.database.pool.query(
        'drop function spots_geog(double precision, double precision) cascade',
      );
      const res = await h.app.inject({
        method: 'GET',
        url: '/api/v1/spots?near=48.8566,2.3522&radiusM=2000',
      });
      assert.equal(res.statusCode, 500, res.body);
      assert.match(h.logs.text, /SPOTS_GEO=postgis/);
      // Listings without `near` are not concerned.
      assert.equal((await h.app.inject({ method: 'GET', url: '/api/v1/spots' })).statusCode, 200);
    } finally {
      await h.close();
    }
  });
});
