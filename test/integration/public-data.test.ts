// The public data app through HTTP: publishing (datasets, versions, the import job), public
// reads (filters, sort, search, distance, facets, keyset pages, exports), caching headers, and
// every bad input of issue 20 (files, columns, filters, cursors, search syntax).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { knownModules } from '../../src/app.ts';
import { publicDataApp } from '../../src/apps/public-data/index.ts';
import { allMigrations } from '../../src/migrations/index.ts';
import { ConfigError, loadConfig } from '../../src/platform/config/index.ts';
import { rollback } from '../../src/platform/db/index.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { createUser, bearer, signIn, signInAdmin } from '../helpers/identity.ts';
import { assertProblem } from '../helpers/problem.ts';
import {
  ensureDataset,
  publish,
  read,
  startPublicData,
  uploadDataset,
  type PublicDataHarness,
} from '../helpers/public-data.ts';

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

const names = (res: { json: <T>() => T }) => res.json<Page>().items.map((r) => r.name);

describe('public data', () => {
  let h: PublicDataHarness;
  before(async () => {
    h = await startPublicData({
      PUBLIC_DATA_MAX_BYTES: '262144',
      PUBLIC_DATA_KEEP_VERSIONS: '2',
      MAX_URL_LENGTH: '65536',
    });
    const v = await publish(h, 'cities', CITIES);
    assert.equal(v.status, 'ready', JSON.stringify(v));
  });
  after(async () => {
    await h?.close();
  });

  test('types are inferred from every value and read back typed', async () => {
    const versions = await h.app.inject({
      method: 'GET',
      url: '/api/v1/public-data/datasets/cities/versions',
      headers: h.admin.headers,
    });
    const v = versions.json<{
      items: { rowCount: number; columns: { name: string; type: string }[] }[];
    }>().items[0];
    assert.equal(v?.rowCount, 5);
    assert.deepEqual(Object.fromEntries((v?.columns ?? []).map((c) => [c.name, c.type])), {
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
    assert.deepEqual(names(res), ['Paris', 'Marseille']);
    const paris = page.items[0] ?? {};
    assert.equal(paris.population, 2102650);
    assert.equal(paris.area_km2, 105.4);
    assert.equal(paris.capital, true);
    assert.equal(paris.founded, '0250-01-01');
    assert.equal(new Date(String(paris.updated)).toISOString(), '2024-01-02T10:00:00.000Z');
    assert.deepEqual(paris.location, { lat: 48.8566, lng: 2.3522 });
    assert.equal(page.page.hasMore, true);
    // A timestamp without a zone is UTC.
    const lyon = await read(h, '/datasets/cities/rows?name=Lyon');
    assert.equal(
      new Date(String(lyon.json<Page>().items[0]?.updated)).toISOString(),
      '2024-01-03T08:30:00.000Z',
    );
  });

  test('the metadata lists the columns, the row count and the readable versions', async () => {
    const res = await read(h, '/datasets/cities');
    assert.equal(res.statusCode, 200, res.body);
    const d = res.json<{ rowCount: number; version: number; columns: { name: string }[] }>();
    assert.equal(d.rowCount, 5);
    assert.equal(d.version, 1);
    assert.equal(d.columns.length, 8);
    const list = await read(h, '/datasets?q=cities');
    assert.deepEqual(
      list.json<{ items: { slug: string }[] }>().items.map((i) => i.slug),
      ['cities'],
    );
    assertProblem(await read(h, '/datasets/nowhere'), 404, 'DATASET_NOT_FOUND');
    assertProblem(await read(h, '/datasets/nowhere/rows'), 404, 'DATASET_NOT_FOUND');
  });

  test('typed filters: every operator', async () => {
    const cases: [string, string[]][] = [
      ['population[gte]=522250&sort=name', ['Lyon', 'Marseille', 'Paris']],
      ['population[lt]=504078', ['Lille']],
      ['population[lte]=504078&sort=name', ['Lille', 'Toulouse']],
      ['population[gt]=873076', ['Paris']],
      ['name=Lyon', ['Lyon']],
      ['name[eq]=Lyon', ['Lyon']],
      ['capital=true', ['Paris']],
      ['capital[ne]=true&sort=name', ['Lille', 'Lyon', 'Marseille', 'Toulouse']],
      ['founded[isnull]=true', ['Toulouse']],
      ['updated[isnull]=true', ['Lille']],
      ['name[in]=Paris,Lille&sort=name', ['Lille', 'Paris']],
      ['name[startswith]=Ma', ['Marseille']],
      ['notes[contains]=SEINE', ['Paris']],
      ['notes[contains]=50%25', []],
      ['area_km2[gt]=100&sort=-area_km2', ['Marseille', 'Toulouse', 'Paris']],
      ['founded[lt]=0300-01-01&sort=founded', ['Lyon', 'Paris']],
      ['updated[gte]=2024-01-03&sort=updated', ['Lyon', 'Marseille', 'Toulouse']],
      ['population[gt]=300000&population[lt]=600000&sort=name', ['Lyon', 'Toulouse']],
    ];
    for (const [query, expected] of cases) {
      const res = await read(h, `/datasets/cities/rows?${query}`);
      assert.equal(res.statusCode, 200, `${query}: ${res.body}`);
      assert.deepEqual(names(res), expected, query);
    }
  });

  test('a value that does not fit the column’s type is 422 naming the column', async () => {
    for (const [query, column] of [
      ['population=abc', 'population'],
      ['population[gt]=1.5', 'population'],
      ['area_km2=1e', 'area_km2'],
      ['capital=maybe', 'capital'],
      ['founded=2024-13-01', 'founded'],
      ['founded=2023-02-29', 'founded'],
      ['updated[gt]=yesterday', 'updated'],
      ['location=1', 'location'],
      ['population[isnull]=perhaps', 'population'],
      ['population[contains]=5', 'population'],
      ['population[near]=5', 'population'],
    ] as const) {
      const body = assertProblem(
        await read(h, `/datasets/cities/rows?${query}`),
        422,
        'INVALID_FILTER',
      );
      assert.match(String(body.detail), new RegExp(column), query);
    }
  });

  test('filters, sort, fields and facets on unknown columns are 422', async () => {
    for (const query of [
      'nope=1',
      'nope[gt]=1',
      'sort=nope',
      'fields=name,nope',
      'facets=nope',
      'Name=Paris',
      'name%5Bgt=1',
      '%22%3B%20drop%20table%20x%3B--=1',
    ]) {
      assertProblem(await read(h, `/datasets/cities/rows?${query}`), 422, 'INVALID_FILTER');
    }
  });

  test('`in` with 10,000 values is refused, naming the column (PUBLIC_DATA_MAX_IN_VALUES)', async () => {
    const values = Array.from({ length: 10_000 }, (_, i) => String(i)).join(',');
    const body = assertProblem(
      await read(h, `/datasets/cities/rows?population[in]=${values}`),
      422,
      'INVALID_FILTER',
    );
    assert.match(String(body.detail), /population\[in\] lists 10000 values; at most 1000/);
    const ok = Array.from({ length: 1000 }, (_, i) => String(i + 236_710)).join(',');
    assert.deepEqual(names(await read(h, `/datasets/cities/rows?population[in]=${ok}`)), ['Lille']);
  });

  test('keyset pages walk every row once, in order, whatever the sort', async () => {
    for (const sort of [
      '',
      'sort=-population',
      'sort=founded',
      'sort=-founded,name',
      'sort=capital,-updated',
    ]) {
      const seen: unknown[] = [];
      let cursor: string | null = null;
      for (let i = 0; i < 10; i++) {
        const q: string = [sort, 'limit=2', cursor ? `cursor=${cursor}` : '']
          .filter(Boolean)
          .join('&');
        const res = await read(h, `/datasets/cities/rows?${q}`);
        assert.equal(res.statusCode, 200, res.body);
        const page = res.json<Page>();
        seen.push(...page.items.map((r) => r.name));
        cursor = page.page.nextCursor;
        if (!cursor) break;
      }
      assert.equal(seen.length, 5, `${sort}: ${JSON.stringify(seen)}`);
      assert.equal(new Set(seen).size, 5, sort);
      const all = names(await read(h, `/datasets/cities/rows?${sort}&limit=50`));
      assert.deepEqual(seen, all, sort);
    }
    const founded = names(await read(h, '/datasets/cities/rows?sort=founded'));
    assert.equal(founded.at(-1), 'Toulouse', 'nulls last ascending');
    assert.equal(names(await read(h, '/datasets/cities/rows?sort=-founded'))[0], 'Toulouse');
  });

  test('a cursor from another dataset, another version or another sort is 400', async () => {
    await publish(h, 'cities-copy', CITIES);
    const other = (await read(h, '/datasets/cities-copy/rows?limit=1')).json<Page>().page
      .nextCursor;
    assert.ok(other);
    assertProblem(
      await read(h, `/datasets/cities/rows?limit=1&cursor=${other}`),
      400,
      'INVALID_CURSOR',
    );
    const sorted = (await read(h, '/datasets/cities/rows?limit=1&sort=name')).json<Page>().page
      .nextCursor;
    assertProblem(
      await read(h, `/datasets/cities/rows?limit=1&cursor=${sorted}`),
      400,
      'INVALID_CURSOR',
    );
    assertProblem(await read(h, '/datasets/cities/rows?cursor=abc.def'), 400, 'INVALID_CURSOR');
    // Version 1's cursor, once version 2 is current.
    const v1 = (await read(h, '/datasets/cities-copy/rows?limit=1')).json<Page>().page.nextCursor;
    const v2 = await publish(h, 'cities-copy', CITIES);
    assert.equal(v2.number, 2);
    assertProblem(
      await read(h, `/datasets/cities-copy/rows?limit=1&cursor=${v1}`),
      400,
      'INVALID_CURSOR',
    );
    const same = await read(h, `/datasets/cities-copy/rows?limit=1&version=1&cursor=${v1}`);
    assert.equal(same.statusCode, 200, same.body);
  });

  test('q is full-text over searchable columns; tsquery syntax is searched as words', async () => {
    assert.deepEqual(names(await read(h, '/datasets/cities/rows?q=seine')), ['Paris']);
    assert.deepEqual(
      names(await read(h, `/datasets/cities/rows?q=${encodeURIComponent('"ville rose"')}`)),
      ['Toulouse'],
    );
    for (const q of [
      'seine & !',
      "':* | (",
      '!!!',
      'a:*B & c <-> d',
      '\\',
      "'; drop table pd_dataset; --",
    ]) {
      const res = await read(h, `/datasets/cities/rows?q=${encodeURIComponent(q)}`);
      assert.equal(res.statusCode, 200, `${q}: ${res.body}`);
    }
  });

  test('near= and radiusM= on the geo column', async () => {
    assert.deepEqual(names(await read(h, '/datasets/cities/rows?near=48.85,2.35&radiusM=10000')), [
      'Paris',
    ]);
    assert.deepEqual(
      names(await read(h, '/datasets/cities/rows?near=48.85,2.35&radiusM=500000&sort=name')),
      ['Lille', 'Lyon', 'Paris'],
    );
    assertProblem(await read(h, '/datasets/cities/rows?near=91,0'), 422, 'INVALID_FILTER');
    assertProblem(await read(h, '/datasets/cities/rows?radiusM=5'), 422, 'INVALID_FILTER');
  });

  test('facets count the top values under the same filters; fields= chooses columns', async () => {
    const res = await read(
      h,
      '/datasets/cities/rows?facets=capital&population[gt]=300000&fields=name,population',
    );
    assert.equal(res.statusCode, 200, res.body);
    const page = res.json<Page>();
    assert.deepEqual(page.facets?.capital, [
      { value: false, count: 3 },
      { value: true, count: 1 },
    ]);
    assert.deepEqual(Object.keys(page.items[0] ?? {}), ['name', 'population']);
  });

  test('every public answer: strong ETag from the version, 304, Cache-Control, Vary', async () => {
    const res = await read(h, '/datasets/cities/rows?sort=name');
    const etag = String(res.headers.etag);
    assert.match(etag, /^"[A-Za-z0-9_-]{32}"$/);
    assert.equal(res.headers['cache-control'], 'public, max-age=60, stale-while-revalidate=300');
    assert.match(String(res.headers.vary), /Origin/);
    const again = await read(h, '/datasets/cities/rows?sort=name', { 'if-none-match': etag });
    assert.equal(again.statusCode, 304);
    assert.equal(again.body, '');
    // No body, no Content-Length, no type: a keep-alive client reads nothing more.
    assert.equal(again.headers['content-length'], undefined);
    assert.equal(again.headers['content-type'], undefined);
    assert.equal(again.headers.etag, etag);
    assert.equal(again.headers['cache-control'], 'public, max-age=60, stale-while-revalidate=300');
    const other = await read(h, '/datasets/cities/rows?sort=-name', { 'if-none-match': etag });
    assert.equal(other.statusCode, 200);
    for (const url of ['/datasets', '/datasets/cities', '/datasets/cities/rows.csv']) {
      const first = await read(h, url);
      assert.equal(first.statusCode, 200, url);
      assert.ok(first.headers.etag, url);
      assert.match(String(first.headers.vary), /Origin/, url);
      const second = await read(h, url, { 'if-none-match': String(first.headers.etag) });
      assert.equal(second.statusCode, 304, url);
      assert.equal(second.headers['content-length'], undefined, url);
    }
  });

  test('a new version is swapped in; older ones stay readable up to PUBLIC_DATA_KEEP_VERSIONS', async () => {
    const slug = 'swapped';
    await publish(h, slug, 'n\n1\n');
    const before = await read(h, `/datasets/${slug}/rows`);
    const etag1 = String(before.headers.etag);
    await publish(h, slug, 'n\n2\n');
    const now = await read(h, `/datasets/${slug}/rows`, { 'if-none-match': etag1 });
    assert.equal(now.statusCode, 200);
    assert.deepEqual(now.json<Page>().items, [{ n: 2 }]);
    assert.equal(now.json<Page>().version, 2);
    assert.deepEqual((await read(h, `/datasets/${slug}/rows?version=1`)).json<Page>().items, [
      { n: 1 },
    ]);
    const v3 = await publish(h, slug, 'n\n3\n');
    assert.equal(v3.number, 3);
    assertProblem(await read(h, `/datasets/${slug}/rows?version=1`), 404, 'VERSION_NOT_FOUND');
    assert.deepEqual((await read(h, `/datasets/${slug}/rows?version=2`)).json<Page>().items, [
      { n: 2 },
    ]);
    const { rows } = await h.tdb.database.pool.query<{ n: number }>(
      `select count(*)::int as n from pd_version v join pd_dataset d on d.id = v.dataset_id
       where d.slug = $1 and v.status = 'retired' and v.table_name is null`,
      [slug],
    );
    assert.equal(rows[0]?.n, 1);
  });

  test('CSV: a BOM, CRLF and LF mixed, quoted newlines', async () => {
    const csv = '\uFEFFid,text\r\n1,"two\r\nlines"\n2,plain\r\n3,"a ""quote"" and, comma"\n';
    const v = await publish(h, 'messy', csv);
    assert.equal(v.status, 'ready', JSON.stringify(v));
    assert.deepEqual(
      v.columns.map((c) => c.name),
      ['id', 'text'],
    );
    assert.deepEqual((await read(h, '/datasets/messy/rows')).json<Page>().items, [
      { id: 1, text: 'two\r\nlines' },
      { id: 2, text: 'plain' },
      { id: 3, text: 'a "quote" and, comma' },
    ]);
  });

  test('duplicate and empty headers are renamed, with warnings', async () => {
    const v = await publish(h, 'dups', 'a,,a,A,\nx,y,z,w,v\n');
    assert.equal(v.status, 'ready', JSON.stringify(v));
    assert.deepEqual(
      v.columns.map((c) => c.name),
      ['a', 'column_2', 'a_2', 'a_3', 'column_5'],
    );
    assert.equal(v.warnings.length, 4, JSON.stringify(v.warnings));
    assert.deepEqual((await read(h, '/datasets/dups/rows')).json<Page>().items, [
      { a: 'x', column_2: 'y', a_2: 'z', a_3: 'w', column_5: 'v' },
    ]);
  });

  test('column names that are SQL keywords or hold quotes are data, never SQL', async () => {
    const v = await publish(
      h,
      'keywords',
      'select,"a ""quoted"" name",order,"x""); drop table pd_dataset; --",limit\n1,2,3,4,5\n',
    );
    assert.equal(v.status, 'ready', JSON.stringify(v));
    assert.deepEqual(
      v.columns.map((c) => [c.name, c.label]),
      [
        ['select', 'select'],
        ['a_quoted_name', 'a "quoted" name'],
        ['order', 'order'],
        ['x_drop_table_pd_dataset', 'x"); drop table pd_dataset; --'],
        ['limit_col', 'limit'],
      ],
    );
    const res = await read(
      h,
      '/datasets/keywords/rows?select=1&order[gte]=3&sort=-order&limit_col=5',
    );
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json<Page>().items, [
      { select: 1, a_quoted_name: 2, order: 3, x_drop_table_pd_dataset: 4, limit_col: 5 },
    ]);
  });

  test('2,000 columns: the import fails (TOO_MANY_COLUMNS) and nothing is published', async () => {
    const header = Array.from({ length: 2000 }, (_, i) => `c${String(i)}`).join(',');
    const row = Array.from({ length: 2000 }, () => '1').join(',');
    const v = await publish(h, 'wide', `${header}\n${row}\n`);
    assert.equal(v.status, 'failed');
    assert.equal(v.failureCode, 'TOO_MANY_COLUMNS');
    assertProblem(await read(h, '/datasets/wide/rows'), 404, 'DATASET_NOT_FOUND');
  });

  test('a file over PUBLIC_DATA_MAX_BYTES is refused', async () => {
    const big = `n\n${'123456789\n'.repeat(40_000)}`; // 400 KB > 256 KiB
    const v = await publish(h, 'big', big);
    assert.equal(v.status, 'failed');
    assert.equal(v.failureCode, 'FILE_TOO_LARGE');
  });

  test('invalid UTF-8 is refused, naming the line', async () => {
    const bytes = Buffer.concat([
      Buffer.from('name\nok\nbad '),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('\n'),
    ]);
    const v = await publish(h, 'latin', bytes);
    assert.equal(v.status, 'failed');
    assert.equal(v.failureCode, 'INVALID_UTF8');
    assert.match(String(v.failure), /line 3/);
  });

  test('bad rows are skipped and reported with their line; the rest is published', async () => {
    const csv = 'id,amount\n1,10\n2,11,extra\n3,"twelve"\n4,13\n"5,\n';
    const v = await publish(h, 'bad-rows', csv, { columns: { amount: { type: 'integer' } } });
    assert.equal(v.status, 'ready', JSON.stringify(v));
    assert.equal(v.rowCount, 2);
    assert.equal(v.badRowCount, 3, JSON.stringify(v.badRows));
    assert.deepEqual(
      v.badRows.map((r) => r.line),
      [3, 4, 6],
    );
    assert.match(v.badRows[1]?.message ?? '', /amount/);
  });

  test('overrides: type, label, description, hidden, sortable, searchable', async () => {
    const v = await publish(h, 'overridden', 'code,secret,label\n007,s1,Bond\n042,s2,Answer\n', {
      columns: {
        code: { type: 'text', label: 'Code', description: 'Agent code' },
        secret: { hidden: true },
        label: { sortable: false, searchable: true },
      },
    });
    assert.equal(v.status, 'ready', JSON.stringify(v));
    const rows = (await read(h, '/datasets/overridden/rows?sort=code')).json<Page>().items;
    assert.deepEqual(rows, [
      { code: '007', label: 'Bond' },
      { code: '042', label: 'Answer' },
    ]);
    // Hidden: answered exactly as an unknown column.
    const hidden = assertProblem(
      await read(h, '/datasets/overridden/rows?secret=s1'),
      422,
      'INVALID_FILTER',
    );
    const unknown = assertProblem(
      await read(h, '/datasets/overridden/rows?nothing=s1'),
      422,
      'INVALID_FILTER',
    );
    assert.equal(hidden.detail?.replace('secret', 'X'), unknown.detail?.replace('nothing', 'X'));
    assertProblem(await read(h, '/datasets/overridden/rows?fields=secret'), 422, 'INVALID_FILTER');
    const sort = assertProblem(
      await read(h, '/datasets/overridden/rows?sort=label'),
      422,
      'INVALID_FILTER',
    );
    assert.match(String(sort.detail), /label is not sortable/);
    const csv = await read(h, '/datasets/overridden/rows.csv');
    assert.doesNotMatch(csv.body, /s1|secret/);
    const meta = (await read(h, '/datasets/overridden')).json<{
      columns: { name: string; label: string }[];
    }>();
    assert.deepEqual(
      meta.columns.map((c) => c.name),
      ['code', 'label'],
    );
    assert.equal(meta.columns[0]?.label, 'Code');
  });

  test('CSV export neutralises formulas; numbers stay numbers', async () => {
    const csv = [
      'id,cell,n',
      '1,"=HYPERLINK(""http://evil.example"",""x"")",-5',
      '2,+1+1,3',
      '3,-2+3,4',
      '4,@SUM(A1),5',
      '5,"\tTAB",6',
      '6,"\rCR",7',
      '7,plain,8',
    ].join('\n');
    const v = await publish(h, 'formulas', csv);
    assert.equal(v.status, 'ready', JSON.stringify(v));
    const res = await read(h, '/datasets/formulas/rows.csv');
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.headers['content-type'], 'text/csv; charset=utf-8');
    assert.equal(
      res.headers['content-disposition'],
      `attachment; filename="formulas-v1.csv"; filename*=UTF-8''formulas-v1.csv`,
    );
    const lines = res.body.split(/\r?\n(?=[0-9]|$)/);
    assert.equal(lines[0], 'id,cell,n');
    assert.equal(lines[1], `1,"'=HYPERLINK(""http://evil.example"",""x"")",-5`);
    assert.equal(lines[2], "2,'+1+1,3");
    assert.equal(lines[3], "3,'-2+3,4");
    assert.equal(lines[4], "4,'@SUM(A1),5");
    assert.equal(lines[5], "5,'\tTAB,6");
    assert.equal(lines[6], `6,"'\rCR",7`);
    assert.equal(lines[7], '7,plain,8');
    // JSON keeps the values as they are (neutralising is for spreadsheets).
    const json = (await read(h, '/datasets/formulas/rows?id=1')).json<Page>().items[0];
    assert.equal(json?.cell, '=HYPERLINK("http://evil.example","x")');
  });

  test('exports stream the whole filtered, sorted result (CSV and NDJSON)', async () => {
    const csv = await read(
      h,
      '/datasets/cities/rows.csv?population[gt]=500000&sort=-population&fields=name,population,location,capital',
    );
    assert.equal(csv.statusCode, 200, csv.body);
    assert.equal(
      csv.body,
      'name,population,location,capital\nParis,2102650,"48.8566,2.3522",true\nMarseille,873076,"43.2965,5.3698",false\nLyon,522250,"45.764,4.8357",false\nToulouse,504078,"43.6047,1.4442",false\n',
    );
    const nd = await read(h, '/datasets/cities/rows.ndjson?sort=name&fields=name,updated,location');
    assert.equal(nd.statusCode, 200);
    assert.equal(nd.headers['content-type'], 'application/x-ndjson; charset=utf-8');
    const rows = nd.body
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(
      rows.map((r) => r.name),
      ['Lille', 'Lyon', 'Marseille', 'Paris', 'Toulouse'],
    );
    assert.deepEqual(rows[3]?.location, { lat: 48.8566, lng: 2.3522 });
    assertProblem(await read(h, '/datasets/cities/rows.csv?nope=1'), 422, 'INVALID_FILTER');
    // HEAD: the headers of the export, and no COPY for a body nobody reads.
    const head = await h.app.inject({
      method: 'HEAD',
      url: '/api/v1/public-data/datasets/cities/rows.csv',
    });
    assert.equal(head.statusCode, 200);
    assert.equal(head.headers['content-type'], 'text/csv; charset=utf-8');
    assert.ok(head.headers.etag);
    assert.equal(head.body, '');
  });

  test('NDJSON: keys become columns, numbers exact, points from objects', async () => {
    const nd = [
      '{"id": 1, "big": 12345678901234567890, "price": 0.1, "where": {"lat": 1.5, "lng": 2.5}, "tags": ["a"]}',
      '',
      '{"id": 2, "big": 1, "price": 10, "where": {"type": "Point", "coordinates": [3.5, 4.5]}, "extra": true}',
      'not json',
      '[1, 2]',
    ].join('\r\n');
    const v = await publish(h, 'nd', nd, { format: 'ndjson' });
    assert.equal(v.status, 'ready', JSON.stringify(v));
    assert.deepEqual(
      v.columns.map((c) => [c.name, c.type]),
      [
        ['id', 'integer'],
        ['big', 'decimal'],
        ['price', 'decimal'],
        ['where', 'geo'],
        ['tags', 'text'],
        ['extra', 'boolean'],
      ],
    );
    assert.deepEqual(
      v.badRows.map((r) => r.line),
      [4, 5],
    );
    const res = await read(h, '/datasets/nd/rows.ndjson?id=1');
    assert.match(res.body, /"big":12345678901234567890/);
    assert.match(res.body, /"price":0.1/);
    assert.deepEqual((await read(h, '/datasets/nd/rows?id=2')).json<Page>().items[0]?.where, {
      lat: 4.5,
      lng: 3.5,
    });
  });

  test('publishing needs datasets:manage; another user’s file is not found', async () => {
    const anon = await h.app.inject({
      method: 'POST',
      url: '/api/v1/public-data/datasets',
      payload: { slug: 'x', title: 'X' },
    });
    assertProblem(anon, 401, 'UNAUTHORIZED');
    const user = await createUser(h);
    const headers = bearer((await signIn(h.app, user)).accessToken);
    assertProblem(
      await h.app.inject({
        method: 'POST',
        url: '/api/v1/public-data/datasets',
        headers,
        payload: { slug: 'x', title: 'X' },
      }),
      403,
      'FORBIDDEN',
    );
    await ensureDataset(h, 'owned');
    const missing = await h.app.inject({
      method: 'POST',
      url: '/api/v1/public-data/datasets/owned/versions',
      headers: h.admin.headers,
      payload: { fileId: '0193b6f2-3c4e-7a1b-9f00-2a1d3e4f5a6b' },
    });
    assertProblem(missing, 404, 'DATASET_FILE_NOT_FOUND');
    // Another publisher's upload is not found either (files are looked up by owner).
    const fileId = await uploadDataset(h, 'n\n1\n');
    const other = await signInAdmin(h.app, h);
    const theirs = await h.app.inject({
      method: 'POST',
      url: '/api/v1/public-data/datasets/owned/versions',
      headers: other.headers,
      payload: { fileId },
    });
    assertProblem(theirs, 404, 'DATASET_FILE_NOT_FOUND');
    const dup = await h.app.inject({
      method: 'POST',
      url: '/api/v1/public-data/datasets',
      headers: h.admin.headers,
      payload: { slug: 'owned', title: 'Again' },
    });
    assertProblem(dup, 409, 'SLUG_TAKEN');
  });

  test('PATCH and DELETE a dataset; tags filter the list', async () => {
    await publish(h, 'editable', 'n\n1\n');
    const patched = await h.app.inject({
      method: 'PATCH',
      url: '/api/v1/public-data/datasets/editable',
      headers: h.admin.headers,
      payload: { title: 'Edited', tags: ['budget'] },
    });
    assert.equal(patched.statusCode, 200, patched.body);
    const meta = (await read(h, '/datasets/editable')).json<{ title: string; tags: string[] }>();
    assert.equal(meta.title, 'Edited');
    assert.deepEqual(
      (await read(h, '/datasets?tag=budget'))
        .json<{ items: { slug: string }[] }>()
        .items.map((i) => i.slug),
      ['editable'],
    );
    const deleted = await h.app.inject({
      method: 'DELETE',
      url: '/api/v1/public-data/datasets/editable',
      headers: h.admin.headers,
    });
    assert.equal(deleted.statusCode, 204);
    assertProblem(await read(h, '/datasets/editable/rows'), 404, 'DATASET_NOT_FOUND');
    const left = await h.tdb.database.pool.query(
      `select 1 from pd_version v join pd_dataset d on d.id = v.dataset_id where d.slug = 'editable' and v.table_name is not null`,
    );
    assert.equal(left.rowCount, 0);
  });
});

describe('public data: settings and migration', () => {
  test('bad settings are listed with the platform’s problems', () => {
    for (const [key, bad] of [
      ['PUBLIC_DATA_MAX_COLUMNS', '2000'],
      ['PUBLIC_DATA_KEEP_VERSIONS', '0'],
      ['PUBLIC_DATA_MAX_AGE', 'soon'],
      ['PUBLIC_DATA_SEARCH_CONFIG', "simple'; drop"],
    ] as const) {
      try {
        loadConfig(
          { APP_ENV: 'test', PORT: 'x', [key]: bad },
          { modules: [...new Set([...knownModules(), publicDataApp])] },
        );
        assert.fail(`${key}=${bad} was accepted`);
      } catch (error) {
        assert.ok(error instanceof ConfigError, String(error));
        assert.deepEqual(error.issues.map((i) => i.key).sort(), [key, 'PORT'].sort());
      }
    }
  });

  test('up creates the catalogue and the data schema; down removes them', async (t) => {
    const migrations = allMigrations([publicDataApp]);
    const tdb = await createTestDatabase({ migrations });
    t.after(() => tdb.drop());
    const exists = async () =>
      (
        await tdb.database.pool.query<{ t: string | null; s: number }>(
          `select to_regclass('public.pd_version')::text as t,
             (select count(*)::int from pg_namespace where nspname = 'public_data') as s`,
        )
      ).rows[0];
    assert.deepEqual(await exists(), { t: 'pd_version', s: 1 });
    const names = Object.keys(migrations).sort();
    const later = names.slice(names.indexOf('202612071300_public_data_create'));
    assert.deepEqual(await rollback(tdb.database.db, migrations, later.length), later.reverse());
    assert.deepEqual(await exists(), { t: null, s: 0 });
  });
});
