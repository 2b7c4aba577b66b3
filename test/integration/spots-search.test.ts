// Spots text search without `near` (migration 202612080400): relevance is a tier (the whole query
// in the name; in name and tags; in name, tags and description; anywhere, address included), then
// the favourite count, then the id. Each tier is read on its own index, one after the other until
// the page is full, so no statement ranks every match. Checked here: the order on a small set,
// pages that walk across tiers (each spot once, the same order as one page), `-word` queries (not
// nested), the prefix form, the typo fallback only when nothing matches, and tiers beyond the
// popularity walk's window (read on their index instead). The plans are in spots-explain.test.ts.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { negated, tierKey, TIER_WALK_ROWS } from '../../src/apps/spots/spots.repository.ts';
import {
  startSpotsHarness,
  type SpotPageJson,
  type SpotsHarness,
  type SpotsUser,
} from '../helpers/spots.ts';

let h: SpotsHarness;
let owner: SpotsUser;
const ids: Record<string, string> = {};

/** Sets a spot's favourite count (the recount job's column) directly. */
async function favourites(id: string, n: number): Promise<void> {
  await h.tdb.database.pool.query('update spots_spot set favourite_count = $2 where id = $1', [
    id,
    n,
  ]);
}

before(async () => {
  h = await startSpotsHarness();
  owner = await h.user();
  const at = { lat: 10, lng: 10 };
  const make = async (key: string, body: Record<string, unknown>, favs: number) => {
    const spot = await h.spot(owner, { location: at, category: 'other', ...body });
    ids[key] = spot.id;
    await favourites(spot.id, favs);
  };
  // "quokka beach": both words in the name (tier 0), the more favourited first.
  await make('nameLow', { name: 'Quokka beach' }, 1);
  await make('nameHigh', { name: 'Quiet quokka beach' }, 9);
  // In name and tags together (tier 1), however popular.
  await make('tags', { name: 'Quokka corner', tags: ['beach'] }, 500);
  // Needs the description (tier 2).
  await make('desc', { name: 'Sandy quokka', description: 'A beach at dawn' }, 50);
  // Only with the address (tier 3), two of them by favourites.
  await make('addrHigh', { name: 'Quokka steps', address: '1 Beach Road' }, 40);
  await make('addrLow', { name: 'Quokka stairs', address: '2 Beach Road' }, 2);
  // Not a match: one word only.
  await make('none', { name: 'Quokka hill' }, 1000);
});
after(() => h?.close());

const order = ['nameHigh', 'nameLow', 'tags', 'desc', 'addrHigh', 'addrLow'];
const expected = () => order.map((k) => ids[k]);

/** Walks a listing's pages (`limit` each); every id in order, and the pages' count. */
async function allPages(query: string, limit: number): Promise<{ ids: string[]; pages: number }> {
  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page: SpotPageJson = await h.list(
      `${query}&limit=${String(limit)}${cursor ? `&cursor=${cursor}` : ''}`,
    );
    assert.equal(page.search, 'text');
    seen.push(...page.items.map((s) => s.id));
    cursor = page.page.nextCursor;
    pages += 1;
  } while (cursor && pages < 50);
  return { ids: seen, pages };
}

describe('spots: text search ranking (tiers, then favourites)', () => {
  test('the whole query in the name first, then with tags, description, address; favourites within', async () => {
    const page = await h.list('q=quokka%20beach');
    assert.equal(page.search, 'text');
    assert.deepEqual(
      page.items.map((s) => s.id),
      expected(),
    );
    // Words in any order and case, accents ignored: the same.
    assert.deepEqual(
      (await h.list('q=BEACH%20Qu%C3%B2kka')).items.map((s) => s.id),
      expected(),
    );
  });

  test('pages walk across the tiers: each spot once, in the one-page order, for any page size', async () => {
    for (const limit of [1, 2, 4]) {
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page: SpotPageJson = await h.list(
          `q=quokka%20beach&limit=${String(limit)}${cursor ? `&cursor=${cursor}` : ''}`,
        );
        assert.equal(page.search, 'text');
        seen.push(...page.items.map((s) => s.id));
        cursor = page.page.nextCursor;
        pages += 1;
      } while (cursor && pages < 20);
      assert.deepEqual(seen, expected(), `limit ${String(limit)}`);
    }
  });

  test('a favourite count changing between pages does not repeat or skip the others', async () => {
    const first = await h.list('q=quokka%20beach&limit=3');
    assert.deepEqual(
      first.items.map((s) => s.id),
      expected().slice(0, 3),
    );
    try {
      // A spot already shown becomes the most favourited; one not yet shown drops to zero.
      await favourites(ids.nameLow ?? '', 10_000);
      await favourites(ids.addrHigh ?? '', 0);
      const rest = await h.list(`q=quokka%20beach&limit=3&cursor=${first.page.nextCursor ?? ''}`);
      assert.deepEqual(
        rest.items.map((s) => s.id),
        [ids.desc, ids.addrLow, ids.addrHigh],
      );
    } finally {
      await favourites(ids.nameLow ?? '', 1);
      await favourites(ids.addrHigh ?? '', 40);
    }
  });

  test('a `-word` query excludes the word from every field, in every tier', async () => {
    assert.ok(negated('quokka -road'));
    assert.ok(!negated('quokka beach-road'));
    assert.deepEqual(
      (await h.list('q=quokka%20beach%20-road')).items.map((s) => s.id),
      [ids.nameHigh, ids.nameLow, ids.tags, ids.desc],
    );
    // The word is in the description only: the name matches, but the spot is out.
    assert.deepEqual(
      (await h.list('q=quokka%20-dawn')).items.map((s) => s.id).includes(ids.desc ?? ''),
      false,
    );
  });

  test('the prefix form: a word being typed finds what it starts; an exact query is the same', async () => {
    assert.deepEqual(
      (await h.list('q=quokka%20bea')).items.map((s) => s.id),
      expected(),
    );
    // "beaches" stems to "beach" in English: the language's form still finds them.
    assert.deepEqual(
      (await h.list('q=quokka%20beaches')).items.map((s) => s.id),
      expected(),
    );
  });

  test('typos fall back to trigram similarity only when the text search finds nothing', async () => {
    const typo = await h.list('q=quoka%20beach');
    assert.equal(typo.search, 'fuzzy');
    assert.ok(typo.items.some((s) => s.id === ids.nameLow));
    // A query the text search answers stays a text search, however few it finds.
    const one = await h.list('q=sandy%20quokka');
    assert.equal(one.search, 'text');
    assert.deepEqual(
      one.items.map((s) => s.id),
      [ids.desc],
    );
  });

  test('the cursor key: a better tier always above, the favourite count within', () => {
    assert.ok(tierKey(0, 0) > tierKey(1, 2 ** 31 - 1));
    assert.ok(tierKey(2, 5) > tierKey(2, 4));
    assert.equal(tierKey(3, 7), 7);
  });
});

describe('spots: tiers beyond the popularity walk', () => {
  // More spots more popular than every match than the walk reads (TIER_WALK_ROWS), none of them a
  // match: the walk of each tier finds nothing and the tier is read on its GIN index; then thirty
  // "wombat" spots more popular than all of them, which the walk finds alone.
  const wombats: string[] = [];
  before(async () => {
    const client = await h.tdb.database.pool.connect();
    try {
      await client.query('set statement_timeout = 0');
      await client.query(
        `insert into spots_spot (id, owner_id, name, description, category, tags, lat, lng, favourite_count)
         select gen_random_uuid(), $1, 'Filler ' || g, '', 'other', '{}', 10, 10, 100000 + g
           from generate_series(1, $2::int) g`,
        [owner.user.id, TIER_WALK_ROWS + 200],
      );
      const { rows } = await client.query<{ id: string }>(
        `insert into spots_spot (id, owner_id, name, description, category, tags, lat, lng, favourite_count)
         select gen_random_uuid(), $1, 'Wombat cove ' || g, '', 'other', '{}', 10, 10, 500000 - g
           from generate_series(1, 30) g
         returning id`,
        [owner.user.id],
      );
      // In the walk's order: most favourited first (500000 - g).
      wombats.push(...rows.map((r) => r.id));
      await client.query('analyze spots_spot');
    } finally {
      client.release();
    }
  });

  test('matches past the walk window: every tier read on its index, the same order and pages', async () => {
    // The first page walks TIER_WALK_ROWS fillers per tier, finds nothing, then reads the tier.
    const one = await h.list('q=quokka%20beach&limit=20');
    assert.deepEqual(
      one.items.map((s) => s.id),
      expected(),
    );
    for (const limit of [1, 4]) {
      const { ids: seen } = await allPages('q=quokka%20beach', limit);
      assert.deepEqual(seen, expected(), `limit ${String(limit)}`);
    }
  });

  test('a dense tier is served by the walk, and its pages continue on the index where the walk stops', async () => {
    for (const limit of [7, 20, 30]) {
      const { ids: seen, pages } = await allPages('q=wombat', limit);
      assert.deepEqual(seen, wombats, `limit ${String(limit)}`);
      assert.equal(pages, Math.ceil(wombats.length / limit), `limit ${String(limit)}`);
    }
  });

  test('a query matching nothing (a typo) answers from the trigram fallback, not a walk of the table', async () => {
    const page = await h.list('q=wombat%20covve');
    assert.equal(page.search, 'fuzzy');
    assert.ok(page.items.length > 0);
    assert.ok(page.items.every((s) => s.name.startsWith('Wombat cove')));
  });
});
