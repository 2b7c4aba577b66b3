// The spots app's queries use their indexes (EXPLAIN on 30,000 spots), and its migration: down
// removes what up made, and the geo and search indexes rebuild under an empty search_path (as
// pg_restore runs), which earthdistance's own ll_to_earth does not survive.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { spotsApp } from '../../src/apps/spots/index.ts';
import {
  explainList,
  type ListFilters,
  type ListOrder,
} from '../../src/apps/spots/spots.repository.ts';
import { prefixQuery } from '../../src/apps/spots/spots.service.ts';
import { allMigrations } from '../../src/migrations/index.ts';
import { rollback } from '../../src/platform/db/index.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

const ROWS = 30_000;
let tdb: TestDatabase;

before(async () => {
  tdb = await createTestDatabase({ migrations: allMigrations([spotsApp]) });
  // A world spread plus a dense city (a third of the rows within ~10 km of Paris). Without the
  // pool's statement timeout: 30,000 rows with their five search vectors take seconds on a
  // loaded machine.
  const client = await tdb.database.pool.connect();
  await client.query('set statement_timeout = 0');
  await client.query(
    `insert into spots_spot (id, owner_id, name, description, category, tags, lat, lng, favourite_count)
     select gen_random_uuid(), gen_random_uuid(),
            (array['Harbour','Old','Sunset','Mural','Bridge','Tower','Garden','Market'])[1 + g % 8]
              || ' ' || (array['view','steps','corner','wall','arch','square','pier','hill'])[1 + (g / 8) % 8]
              || ' ' || g,
            'Seen from the ' || (array['north','south','east','west'])[1 + g % 4],
            (array['viewpoint','mural','bridge','nature'])[1 + g % 4],
            array[(array['sunset','night','river','street'])[1 + g % 4]],
            case when g % 3 = 0 then 48.85 + (random() - 0.5) * 0.15 else (random() * 170) - 85 end,
            case when g % 3 = 0 then 2.35 + (random() - 0.5) * 0.2 else (random() * 360) - 180 end,
            (random() * 50)::int
       from generate_series(1, ${String(ROWS)}) g`,
  );
  await client.query('vacuum analyze spots_spot');
  await client.query('reset statement_timeout');
  client.release();
});
after(() => tdb?.drop());

async function plan(filters: ListFilters, order: ListOrder): Promise<string> {
  return explainList(tdb.database.db, filters, order, 20);
}

const paris = { lat: 48.8566, lng: 2.3522, radiusM: 2000 };

describe('spots: the listings use their indexes', () => {
  test('nearby: the GiST index on the earth point', async () => {
    const p = await plan({ near: paris }, 'distance');
    assert.match(p, /spots_spot_earth_idx/, p);
    assert.doesNotMatch(p, /Seq Scan/, p);
  });

  test('viewport: the GiST index on the point, both halves of an antimeridian box', async () => {
    const p = await plan(
      { boxes: [{ minLng: 2.3, minLat: 48.8, maxLng: 2.4, maxLat: 48.9 }] },
      'popular',
    );
    assert.match(p, /spots_spot_point_idx/, p);
    assert.doesNotMatch(p, /Seq Scan/, p);
    const across = await plan(
      {
        boxes: [
          { minLng: 175, minLat: -20, maxLng: 180, maxLat: -10 },
          { minLng: -180, minLat: -20, maxLng: -175, maxLat: -10 },
        ],
      },
      'popular',
    );
    assert.match(across, /BitmapOr[\s\S]*spots_spot_point_idx[\s\S]*spots_spot_point_idx/, across);
  });

  /** A full-text filter of `q` (English, with the prefix form). */
  const textOf = (q: string) => ({
    text: { mode: 'text' as const, language: 'english', q, prefix: prefixQuery(q) },
  });

  test('text: the GIN index of the name tier; typos: the trigram index', async () => {
    const text = await plan(textOf('harbour pier'), 'relevance');
    // Without `near`: each tier on its own (migration 202612080400); this query's names are few,
    // so the first tier is read on the names' GIN index (spots-search.test.ts has the rest).
    assert.match(text, /spots_spot_search_name_idx/, text);
    assert.doesNotMatch(text, /Seq Scan/, text);
    const fuzzy = await plan({ text: { mode: 'fuzzy', q: 'harbor peir' } }, 'relevance');
    assert.match(fuzzy, /spots_spot_name_trgm_idx/, fuzzy);
    const near = await plan(
      { near: paris, text: { mode: 'text', language: 'english', q: 'mural', prefix: null } },
      'relevance',
    );
    assert.doesNotMatch(near, /Seq Scan/, near);
  });

  test('text without near: each tier is a bounded walk of the popularity index, then its own GIN index', async () => {
    const p = await plan(textOf('harbour pier'), 'relevance');
    assert.doesNotMatch(p, /Seq Scan/, p);
    const steps = p.split(/^-- tier \d+ (?:walk|exact)$/m).slice(1);
    assert.deepEqual(
      p.match(/^-- tier \d+ (?:walk|exact)$/gm),
      [0, 1, 2, 3].flatMap((t) => [`-- tier ${String(t)} walk`, `-- tier ${String(t)} exact`]),
    );
    const indexes = ['search_name', 'search_tags', 'search_text', 'search'];
    for (const [tier, index] of indexes.entries()) {
      const walk = steps[2 * tier] ?? '';
      const exact = steps[2 * tier + 1] ?? '';
      // The walk: the popularity index, under a limit.
      assert.match(walk, /Limit[\s\S]*Limit[\s\S]*spots_spot_popular_idx/, walk);
      // The exact read: the tier's own GIN index, never the popularity walk.
      assert.match(exact, new RegExp(`spots_spot_${index}_idx`), exact);
      assert.doesNotMatch(exact, /spots_spot_popular_idx/, exact);
    }
  });

  test('newest and popular: their btree indexes, no sort of the table', async () => {
    assert.match(await plan({}, 'newest'), /spots_spot_newest_idx/);
    assert.match(await plan({}, 'popular'), /spots_spot_popular_idx/);
  });
});

describe('spots: the migration', () => {
  test('the indexes rebuild with an empty search_path (pg_restore)', async () => {
    const client = await tdb.database.pool.connect();
    try {
      await client.query(`set search_path = ''`);
      await client.query('reindex index public.spots_spot_earth_idx');
      await client.query('reindex index public.spots_spot_search_idx');
      await client.query('reindex index public.spots_spot_name_trgm_idx');
      // PostGIS's index, where the server has PostGIS (spots-geo-engines.test.ts tests both).
      const { rows } = await client.query<{ ok: boolean }>(
        `select to_regclass('public.spots_spot_geog_idx') is not null as ok`,
      );
      if (rows[0]?.ok === true) await client.query('reindex index public.spots_spot_geog_idx');
      await client.query(
        `insert into public.spots_spot (id, owner_id, name, category, tags, lat, lng)
         values (gen_random_uuid(), gen_random_uuid(), 'Café', 'other', '{x}', 1, 1)`,
      );
    } finally {
      await client.query('reset search_path');
      client.release();
    }
  });

  test('down removes its tables and functions', async () => {
    const migrations = allMigrations([spotsApp]);
    const names = Object.keys(migrations).sort();
    const later = names.slice(names.indexOf('202612071000_spots_create'));
    assert.deepEqual(await rollback(tdb.database.db, migrations, later.length), later.reverse());
    const { rows } = await tdb.database.pool.query<{ n: number }>(
      `select (select count(*) from pg_class where relname like 'spots\\_%')
            + (select count(*) from pg_proc where proname like 'spots\\_%') as n`,
    );
    assert.equal(Number(rows[0]?.n), 0);
  });
});
