// The public data app through HTTP: publishing (datasets, versions, the import job), public
// reads (filters, sort, search, distance, facets, keyset pages, exports), caching headers, CORS.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertProblem } from '../helpers/problem.ts';
import { publish, read, startPublicData, type PublicDataHarness } from '../helpers/public-data.ts';

interface Page {
  version: number;
  items: Record<string, unknown>[];
  page: { limit: number; nextCursor: string | null; hasMore: boolean };
  facets?: Record<string, { value: unknown; count: number }[]>;
}

const CITIES = [
  'name,population,area_km2,capital,founded,updated,location,notes',
  'Paris,2102650,105.4,true,0250-01-01,2024-01-02T10:00:00Z,"48.8566,2.3522",River Seine',
  'Lyon,522250,47.87,false,0043-10-09,2024-01-03 08:30:00,"45.764,4.8357","Gones, bouchons"',
  'Marseille,873076,240.6,false,0600-01-01,2024-01-04T00:00:00+01:00,"43.2965,5.3698",Vieux-Port',
  'Toulouse,504078,118.3,false,,2024-02-01T12:00:00Z,"43.6047,1.4442",Ville rose',
  'Lille,236710,34.51,false,0640-01-01,,"50.6292,3.0573",',
].join('\n');

describe('public data: publish and read', () => {
  let h: PublicDataHarness;
  before(async () => {
    h = await startPublicData();
  });
  after(async () => {
    await h?.close();
  });

  test('a CSV is imported with inferred types and read back typed', async () => {
    const v = await publish(h, 'cities', CITIES);
    assert.equal(v.status, 'ready', JSON.stringify(v));
    assert.equal(v.rowCount, 5);
    assert.deepEqual(Object.fromEntries(v.columns.map((c) => [c.name, c.type])), {
      name: 'text',
      population: 'integer',
      area_km2: 'decimal',
      capital: 'boolean',
      founded: 'date',
      updated: 'timestamp',
      location: 'geo',
      notes: 'text',
    });
    const res = await read(h, '/datasets/cities/rows?sort=-population&limit=2');
    assert.equal(res.statusCode, 200, res.body);
    const page = res.json<Page>();
    assert.deepEqual(
      page.items.map((r) => r.name),
      ['Paris', 'Marseille'],
    );
    assert.equal(page.items[0]?.population, 2102650);
    assert.equal(page.items[0]?.area_km2, 105.4);
    assert.equal(page.items[0]?.capital, true);
    assert.deepEqual(page.items[0]?.location, { lat: 48.8566, lng: 2.3522 });
    assert.equal(page.page.hasMore, true);
  });
});
