import type { Page } from '../../src/platform/db/index.ts';
import { assertProblem } from '../helpers/problem.ts';
import type { FastifyInstance } from 'fastify';
import { Kysely, PostgresDialect, sql, type CompiledQuery, type RawBuilder } from 'kysely';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { newId, type PaginateOptions, tablesOf } from '../../src/platform/db/index.ts';
import { buildTestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import {
  WidgetIndexes,
  createWidgetsTable,
  listWidgets,
  listWidgetsUncached,
  widgetsApp,
  type WidgetsDB,
} from '../helpers/widgets-app.ts';

const OTHER_SECRET = 'a-different-secret-for-the-second-app-0000';

interface Item {
  id: string;
  name: string;
  description: string | null;
  status: string;
  price: number;
  createdAt: string;
  updatedAt: string;
}

type PageBody = Page<Item>;

interface Seed {
  id: string;
  name: string;
  description: string | null;
  status: string;
  price: number;
  /** ISO timestamp with microseconds, as inserted. */
  createdAt: string;
  /** Microseconds since the epoch, for comparisons JS Dates cannot make. */
  micros: number;
}

/** Deterministic shuffling, so rows are not inserted in any sort order. */
function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle<T>(items: T[], seed: number): T[] {
  const random = mulberry32(seed);
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
  }
  return copy;
}

const BASE_SECONDS = Date.parse('2026-03-01T10:00:00Z') / 1000;

/** Group `g` of five rows: every row of a group has exactly the same created_at, microseconds included. */
function groupTime(g: number): { createdAt: string; micros: number } {
  // Groups 2k and 2k+1 fall in the same millisecond and differ by one microsecond.
  const second = BASE_SECONDS + Math.floor(g / 2);
  const micro = 123_456 + (g % 2);
  const iso = new Date(second * 1000).toISOString().replace('.000Z', `.${micro}Z`);
  return { createdAt: iso, micros: second * 1_000_000 + micro };
}

const QUOTE = "' OR 1=1 --";
const DROP = '"; drop table widgets; --';

function seeds(): Seed[] {
  const rows: Seed[] = [];
  for (let i = 0; i < 250; i++) {
    const description =
      i % 50 === 3
        ? 'The quokka keeps running'
        : i % 100 === 10
          ? 'Zanzibar edition'
          : i % 2 === 0
            ? 'A plain widget'
            : null;
    rows.push({
      id: newId(),
      name: `Widget ${i % 40}`,
      description,
      status: ['active', 'draft', 'retired'][i % 3] as string,
      price: (i * 37) % 60,
      ...groupTime(Math.floor(i / 5)),
    });
  }
  // Rows whose names hold what an injection would use, to show they only ever match literally.
  [QUOTE, DROP, '100% pure', 'snake_case', 'back\\slash'].forEach((name, k) => {
    const micro = 100_000 + k;
    rows.push({
      id: newId(),
      name,
      description: null,
      status: 'special',
      price: 1000 + k,
      createdAt: `2026-02-01T00:00:00.${micro}Z`,
      micros: (Date.parse('2026-02-01T00:00:00Z') / 1000) * 1_000_000 + micro,
    });
  });
  return rows;
}

async function insertSeeds(db: Kysely<WidgetsDB>, rows: Seed[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 1000) {
    await db
      .insertInto('widgets')
      .values(
        rows.slice(i, i + 1000).map((r) => ({
          id: r.id,
          name: r.name,
          description: r.description,
          status: r.status,
          price: r.price,
          created_at: r.createdAt,
          updated_at: r.createdAt,
        })),
      )
      .execute();
  }
}

function url(query: Record<string, string>): string {
  const qs = new URLSearchParams(query).toString();
  return `/api/v1/widgets${qs ? `?${qs}` : ''}`;
}

describe('lists: keyset and offset pagination, filters, sorts, search', () => {
  let tdb: TestDatabase;
  let db: Kysely<WidgetsDB>;
  let app: FastifyInstance;
  /** Same listing, with PAGINATION_ESTIMATE_ABOVE=0 and another APP_SECRET. */
  let estimating: FastifyInstance;
  const rows = seeds();
  const byId = new Map(rows.map((r) => [r.id, r]));

  before(async () => {
    tdb = await createTestDatabase();
    db = tablesOf<WidgetsDB>(tdb.database.db); // a view of the test database with only widgets
    await createWidgetsTable(db);
    await insertSeeds(db, shuffle(rows, 42));
    await sql`analyze widgets`.execute(db);
    app = (await buildTestApp({}, { apps: [widgetsApp], database: tdb.database })).app;
    estimating = (
      await buildTestApp(
        { PAGINATION_ESTIMATE_ABOVE: '0', APP_SECRET: OTHER_SECRET },
        { apps: [widgetsApp], database: tdb.database },
      )
    ).app;
  });
  after(async () => {
    await app?.close();
    await estimating?.close();
    await tdb?.drop();
  });

  async function list(
    query: Record<string, string>,
    target: FastifyInstance = app,
  ): Promise<PageBody> {
    const res = await target.inject({ method: 'GET', url: url(query) });
    assert.equal(res.statusCode, 200, res.body);
    return JSON.parse(res.body) as PageBody;
  }

  /** Follows nextCursor to the end, checking each page's shape; returns the ids in order. */
  async function walk(query: Record<string, string>): Promise<string[]> {
    const limit = Number(query.limit ?? 20);
    const ids: string[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 500; pages++) {
      const body = await list(cursor === null ? query : { ...query, cursor });
      ids.push(...body.items.map((i) => i.id));
      assert.equal(body.page.limit, limit);
      if (!body.page.hasMore) {
        assert.equal(body.page.nextCursor, null, 'the last page has no cursor');
        assert.ok(body.items.length <= limit);
        return ids;
      }
      assert.equal(body.items.length, limit, 'every page before the last is full');
      assert.equal(typeof body.page.nextCursor, 'string');
      assert.notEqual(body.page.nextCursor, cursor, 'the cursor moves on');
      cursor = body.page.nextCursor;
    }
    return assert.fail('the walk did not end');
  }

  /** The listed (not soft-deleted) ids in an order written out by hand. */
  async function ordered(orderBy: string, where: RawBuilder<unknown> = sql`true`) {
    const { rows: found } = await sql<{
      id: string;
    }>`select id from widgets where deleted_at is null and ${where} order by ${sql.raw(orderBy)}`.execute(
      db,
    );
    return found.map((r) => r.id);
  }

  /** Ids of the seeds that satisfy `predicate`, in the default order (-createdAt, -id). */
  async function expected(predicate: (s: Seed) => boolean): Promise<string[]> {
    const all = await ordered('created_at desc, id desc');
    const ids = all.filter((id) => predicate(byId.get(id) as Seed));
    assert.ok(ids.length > 0, 'the case selects some rows');
    return ids;
  }

  test('keyset walks with limit 7 return every row once, in order, for each sort', async () => {
    const sorts: [string | undefined, string][] = [
      [undefined, 'created_at desc, id desc'],
      ['-createdAt', 'created_at desc, id desc'],
      ['createdAt', 'created_at asc, id asc'],
      ['name', 'name asc, id asc'],
      ['-name', 'name desc, id desc'],
      ['price', 'price asc, id asc'],
      ['price,-createdAt', 'price asc, created_at desc, id desc'],
      ['-price,name', 'price desc, name asc, id asc'],
    ];
    for (const [sort, orderBy] of sorts) {
      const ids = await walk({ limit: '7', ...(sort ? { sort } : {}) });
      assert.equal(new Set(ids).size, ids.length, `no row twice with sort=${sort}`);
      assert.equal(ids.length, rows.length, `no row skipped with sort=${sort}`);
      assert.deepEqual(ids, await ordered(orderBy), `order of sort=${sort}`);
    }
  });

  test('rows with equal created_at (to the microsecond) are split across pages without loss', async () => {
    // 5 rows share each timestamp and pairs of timestamps share a millisecond: limit 3 cuts
    // through every run of equal keys, so the cursor must keep microseconds and the id tiebreak.
    const ids = await walk({
      limit: '3',
      'createdAt[gte]': groupTime(0).createdAt,
      'createdAt[lte]': groupTime(9).createdAt,
    });
    assert.deepEqual(
      ids,
      await expected((s) => s.micros >= groupTime(0).micros && s.micros <= groupTime(9).micros),
    );
    assert.equal(ids.length, 50);
  });

  test('the last page has hasMore false and a null cursor, also when it is exactly full', async () => {
    const special = { status: 'special' };
    const full = await list({ ...special, limit: '5' });
    assert.equal(full.items.length, 5);
    assert.equal(full.page.hasMore, false);
    assert.equal(full.page.nextCursor, null);

    const first = await list({ ...special, limit: '4' });
    assert.equal(first.items.length, 4);
    assert.equal(first.page.hasMore, true);
    assert.ok(first.page.nextCursor);
    const last = await list({ ...special, limit: '4', cursor: first.page.nextCursor });
    assert.equal(last.items.length, 1);
    assert.deepEqual(last.page, { limit: 4, nextCursor: null, hasMore: false });

    const none = await list({ status: 'no-such-status' });
    assert.deepEqual(none, { items: [], page: { limit: 20, nextCursor: null, hasMore: false } });
  });

  test('the default limit is 20, the maximum 100; items carry only their own fields', async () => {
    const page = await list({});
    assert.equal(page.items.length, 20);
    assert.equal(page.page.limit, 20);
    assert.equal(page.page.hasMore, true);
    assert.deepEqual(
      page.items.map((i) => i.id),
      (await ordered('created_at desc, id desc')).slice(0, 20),
    );
    const first = page.items[0] as Item;
    const seed = byId.get(first.id) as Seed;
    assert.deepEqual(Object.keys(first).sort(), [
      'createdAt',
      'description',
      'id',
      'name',
      'price',
      'status',
      'updatedAt',
    ]);
    assert.equal(first.name, seed.name);
    assert.equal(first.price, seed.price);
    assert.equal(first.createdAt, new Date(seed.createdAt).toISOString());
    assert.equal((await list({ limit: '100' })).items.length, 100);
    assert.equal((await list({ limit: '1' })).items.length, 1);
  });

  test('offset pagination: page and size add total and pages', async () => {
    const all = await ordered('created_at desc, id desc');
    const total = all.length;
    const pages = Math.ceil(total / 10);

    const first = await list({ page: '1', size: '10' });
    assert.deepEqual(
      first.items.map((i) => i.id),
      all.slice(0, 10),
    );
    assert.deepEqual(first.page, {
      limit: 10,
      nextCursor: null,
      hasMore: true,
      page: 1,
      size: 10,
      total,
      pages,
    });

    const third = await list({ page: '3', size: '10' });
    assert.deepEqual(
      third.items.map((i) => i.id),
      all.slice(20, 30),
    );

    const last = await list({ page: String(pages), size: '10' });
    assert.deepEqual(
      last.items.map((i) => i.id),
      all.slice((pages - 1) * 10),
    );
    assert.equal(last.page.hasMore, false);

    const beyond = await list({ page: String(pages + 1), size: '10' });
    assert.deepEqual(beyond.items, []);
    assert.equal(beyond.page.hasMore, false);
    assert.equal(beyond.page.total, total);

    const defaultSize = await list({ page: '2' });
    assert.equal(defaultSize.page.size, 20);
    assert.deepEqual(
      defaultSize.items.map((i) => i.id),
      all.slice(20, 40),
    );

    const byName = await list({ page: '2', size: '25', sort: 'name' });
    assert.deepEqual(
      byName.items.map((i) => i.id),
      (await ordered('name asc, id asc')).slice(25, 50),
    );

    const active = await list({ page: '1', size: '10', status: 'active' });
    const activeIds = await expected((s) => s.status === 'active');
    assert.equal(active.page.total, activeIds.length);
    assert.equal(active.page.pages, Math.ceil(activeIds.length / 10));
    assert.deepEqual(
      active.items.map((i) => i.id),
      activeIds.slice(0, 10),
    );
  });

  test('count=false skips the total', async () => {
    const page = await list({ page: '1', size: '10', count: 'false' });
    assert.equal(page.items.length, 10);
    assert.deepEqual(page.page, { limit: 10, nextCursor: null, hasMore: true, page: 1, size: 10 });
    const special = await list({ page: '1', size: '10', count: 'false', status: 'special' });
    assert.equal(special.items.length, 5);
    assert.equal(special.page.hasMore, false);
    assert.equal('total' in special.page, false);
  });

  test('above PAGINATION_ESTIMATE_ABOVE the total is the planner estimate and says so', async () => {
    const exact = await list({ page: '1', size: '5' });
    assert.equal(exact.page.total, rows.length);
    assert.equal('totalIsEstimate' in exact.page, false, 'an exact count is not flagged');

    const estimated = await list({ page: '1', size: '5' }, estimating);
    assert.equal(estimated.page.totalIsEstimate, true);
    const total = estimated.page.total as number;
    assert.ok(Number.isInteger(total) && total > 0, `estimate ${total}`);
    // After ANALYZE the planner knows the table's size closely; the estimate is in that range.
    assert.ok(Math.abs(total - rows.length) <= rows.length * 0.2, `estimate ${total}`);
    assert.equal(estimated.page.pages, Math.ceil(total / 5));
    assert.equal(estimated.items.length, 5);

    const filtered = await list({ page: '1', size: '5', status: 'special' }, estimating);
    assert.equal(filtered.page.totalIsEstimate, true);
    assert.ok(
      (filtered.page.total as number) < rows.length,
      'the estimate is of the filtered query',
    );

    const uncounted = await list({ page: '1', size: '5', count: 'false' }, estimating);
    assert.equal('total' in uncounted.page, false);
    assert.equal('totalIsEstimate' in uncounted.page, false);
  });

  test('filters: eq, in, gte, lte, contains, and combined', async () => {
    const cases: [Record<string, string>, (s: Seed) => boolean][] = [
      [{ status: 'active' }, (s) => s.status === 'active'],
      [{ 'status[eq]': 'draft' }, (s) => s.status === 'draft'],
      [{ 'status[in]': 'draft,special' }, (s) => ['draft', 'special'].includes(s.status)],
      [{ price: '7' }, (s) => s.price === 7],
      [{ 'price[gte]': '10', 'price[lte]': '20' }, (s) => s.price >= 10 && s.price <= 20],
      [{ 'price[gte]': '1000' }, (s) => s.price >= 1000],
      [{ 'price[lte]': '0' }, (s) => s.price <= 0],
      [{ name: 'Widget 7' }, (s) => s.name === 'Widget 7'],
      [{ 'name[in]': 'Widget 1,Widget 2' }, (s) => ['Widget 1', 'Widget 2'].includes(s.name)],
      [{ 'name[contains]': 'WIDGET 1' }, (s) => s.name.toLowerCase().includes('widget 1')],
      [
        // Microsecond bounds: the lower one excludes its millisecond's first group.
        { 'createdAt[gte]': groupTime(7).createdAt, 'createdAt[lte]': groupTime(14).createdAt },
        (s) => s.micros >= groupTime(7).micros && s.micros <= groupTime(14).micros,
      ],
      [
        { status: 'active', 'price[gte]': '30', 'name[contains]': 'idget 2' },
        (s) => s.status === 'active' && s.price >= 30 && s.name.includes('idget 2'),
      ],
    ];
    for (const [query, predicate] of cases) {
      const want = await expected(predicate);
      assert.deepEqual(
        await walk({ ...query, limit: '100' }),
        want,
        `filter ${JSON.stringify(query)}`,
      );
    }
    // Exactly the 40 rows of groups 7 to 14.
    assert.equal(
      (
        await walk({
          'createdAt[gte]': groupTime(7).createdAt,
          'createdAt[lte]': groupTime(14).createdAt,
          limit: '100',
        })
      ).length,
      40,
    );
  });

  test('search: full-text over name and description with the english configuration', async () => {
    const words = (s: Seed) => `${s.name} ${s.description ?? ''}`.toLowerCase();
    const quokka = await expected((s) => words(s).includes('quokka'));
    assert.equal(quokka.length, 5);
    assert.deepEqual(
      await walk({ q: 'quokka', limit: '2' }),
      quokka,
      'the cursor keeps the search',
    );
    // Stemming: "runs" finds "running" (the english configuration, not simple).
    assert.deepEqual(await walk({ q: 'runs', limit: '100' }), quokka);
    const zanzibar = await expected((s) => words(s).includes('zanzibar'));
    assert.equal(zanzibar.length, 3);
    assert.deepEqual(await walk({ q: 'Zanzibar', limit: '100' }), zanzibar);
    assert.deepEqual(
      await walk({ q: 'quokka or zanzibar', limit: '100' }),
      await expected((s) => words(s).includes('quokka') || words(s).includes('zanzibar')),
    );
    assert.deepEqual(await walk({ q: 'quokka zanzibar' }), []);
    assert.deepEqual(
      await walk({ q: 'quokka', status: 'active', limit: '100' }),
      await expected((s) => words(s).includes('quokka') && s.status === 'active'),
    );
    const offset = await list({ q: 'quokka', page: '1', size: '2' });
    assert.equal(offset.page.total, 5);
    assert.deepEqual(
      offset.items.map((i) => i.id),
      quokka.slice(0, 2),
    );
  });

  test('a cursor only works with the sort, filters and search it was made for', async () => {
    const byName = await list({ sort: 'name', limit: '7' });
    const cursor = byName.page.nextCursor as string;
    assert.ok(cursor);
    // The same listing with another page size is fine.
    const next = await list({ sort: 'name', limit: '3', cursor });
    assert.equal(next.items.length, 3);

    const misuses: Record<string, string>[] = [
      { sort: 'price', cursor },
      { sort: '-name', cursor },
      { sort: 'name,price', cursor },
      { cursor },
      { sort: 'name', status: 'active', cursor },
      { sort: 'name', q: 'quokka', cursor },
    ];
    for (const query of misuses) {
      const res = await app.inject({ method: 'GET', url: url(query) });
      assertProblem(res, 400, 'INVALID_CURSOR');
    }
    const filtered = await list({ status: 'active', limit: '5' });
    const res = await app.inject({
      method: 'GET',
      url: url({ status: 'draft', cursor: filtered.page.nextCursor as string }),
    });
    assertProblem(res, 400, 'INVALID_CURSOR');

    // Signed with APP_SECRET: another secret does not accept it.
    const other = await estimating.inject({ method: 'GET', url: url({ sort: 'name', cursor }) });
    assertProblem(other, 400, 'INVALID_CURSOR');
  });

  test('tampered, truncated, non-base64, empty and huge cursors are 400 INVALID_CURSOR', async () => {
    const good = (await list({ limit: '5' })).page.nextCursor as string;
    const [body, mac] = good.split('.') as [string, string];
    const flip = (s: string, i: number) =>
      `${s.slice(0, i)}${s[i] === 'A' ? 'B' : 'A'}${s.slice(i + 1)}`;
    const payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as {
      s: string;
      k: string[];
    };
    const forged = Buffer.from(
      JSON.stringify({ s: payload.s, k: ['2000-01-01 00:00:00+00', payload.k[1]] }),
    ).toString('base64url');
    const bad: [string, string][] = [
      ['body char flipped', `${flip(body, Math.floor(body.length / 2))}.${mac}`],
      ['first body char flipped', `${flip(body, 0)}.${mac}`],
      ['MAC char flipped', `${body}.${flip(mac, 5)}`],
      ['truncated', good.slice(0, -4)],
      ['truncated body', `${body.slice(0, -4)}.${mac}`],
      ['no MAC', body],
      ['extra part', `${good}.x`],
      ['non-base64', 'not base64 at all!!.abc'],
      ['standard base64', `${body.slice(0, -2)}+/.${mac}`],
      ['forged keys, old MAC', `${forged}.${mac}`],
      ['empty', ''],
      ['dot only', '.'],
      ['3000 characters', 'A'.repeat(3000)],
      ['unicode', 'é'.repeat(10)],
    ];
    for (const [what, cursor] of bad) {
      const res = await app.inject({ method: 'GET', url: url({ limit: '5', cursor }) });
      assert.equal(res.statusCode, 400, `${what}: ${res.body}`);
      assertProblem(res, 400, 'INVALID_CURSOR');
    }
    // The untouched cursor still works.
    assert.equal((await list({ limit: '5', cursor: good })).items.length, 5);
  });

  test('limit 0, -1, 101, abc and page 0 are 422 naming the parameter', async () => {
    const cases: [Record<string, string>, string][] = [
      [{ limit: '0' }, '/query/limit'],
      [{ limit: '-1' }, '/query/limit'],
      [{ limit: '101' }, '/query/limit'],
      [{ limit: 'abc' }, '/query/limit'],
      [{ limit: '1.5' }, '/query/limit'],
      [{ limit: '' }, '/query/limit'],
      [{ page: '0' }, '/query/page'],
      [{ page: '-3' }, '/query/page'],
      [{ page: 'x' }, '/query/page'],
      [{ page: '1', size: '101' }, '/query/size'],
      [{ page: '1', size: '0' }, '/query/size'],
      [{ page: '1', count: 'maybe' }, '/query/count'],
      [{ page: '1', cursor: 'abc' }, '/query/cursor'],
    ];
    for (const [query, path] of cases) {
      const res = await app.inject({ method: 'GET', url: url(query) });
      const problem = assertProblem(res, 422, 'INVALID_LIST_QUERY');
      assert.deepEqual(
        problem.errors?.map((e) => e.path),
        [path],
        `${JSON.stringify(query)}: ${res.body}`,
      );
    }
  });

  test('unknown sort and filter fields and disallowed operators are one 422 naming each', async () => {
    const res = await app.inject({
      method: 'GET',
      url: url({
        sort: '-color,name',
        colour: 'red',
        'status[gte]': 'a',
        'price[regex]': '1',
        'name[lte]': 'x',
        price: 'cheap',
      }),
    });
    const problem = assertProblem(res, 422, 'INVALID_LIST_QUERY');
    const errors = problem.errors ?? [];
    const find = (path: string) => errors.find((e) => e.path === path)?.message ?? '';
    assert.equal(errors.length, 6, res.body);
    assert.match(find('/query/sort'), /"color"/);
    assert.match(find('/query/sort'), /createdAt, name, price/);
    assert.match(find('/query/colour'), /unknown filter "colour"/);
    assert.match(find('/query/status[gte]'), /operator "gte" is not allowed on "status"/);
    assert.match(find('/query/price[regex]'), /operator "regex"/);
    assert.match(find('/query/name[lte]'), /operator "lte" is not allowed on "name"/);
    assert.match(find('/query/price'), /integer/);

    // Names from the prototype chain are unknown, not special.
    const prototypeNames: Record<string, string>[] = [
      { sort: 'constructor' },
      { ['__proto__']: '1' },
      { constructor: '1' },
      { hasOwnProperty: '1' },
    ];
    for (const query of prototypeNames) {
      const r = await app.inject({ method: 'GET', url: url(query) });
      assertProblem(r, 422, 'INVALID_LIST_QUERY');
    }
  });

  test('injection strings in filters and search only ever match literally', async () => {
    const ids = (name: string) => rows.filter((r) => r.name === name).map((r) => r.id);
    const cases: [Record<string, string>, string[]][] = [
      [{ 'name[contains]': QUOTE }, ids(QUOTE)],
      [{ name: QUOTE }, ids(QUOTE)],
      [{ 'name[in]': QUOTE }, ids(QUOTE)],
      [{ name: DROP }, ids(DROP)],
      [{ 'name[contains]': DROP }, ids(DROP)],
      [{ 'name[contains]': '%' }, ids('100% pure')],
      [{ 'name[contains]': '_' }, ids('snake_case')],
      [{ 'name[contains]': '\\' }, ids('back\\slash')],
      [{ 'name[contains]': '%%' }, []],
      [{ 'name[contains]': 'k\\s' }, ids('back\\slash')],
      [{ name: '%' }, []],
      [{ status: "' OR '1'='1" }, []],
      [{ 'status[in]': "active' OR 'x'='x" }, []],
      [{ q: QUOTE }, ids(QUOTE)],
      [{ q: DROP }, ids(DROP)],
      [{ q: '%' }, []],
      [{ q: '_' }, []],
      [{ q: '\\' }, []],
      [{ q: "'); select pg_sleep(5); --" }, []],
    ];
    for (const [query, want] of cases) {
      assert.deepEqual(
        await walk({ ...query, limit: '100' }),
        want,
        `literal match for ${JSON.stringify(query)}`,
      );
    }
    // A typed filter refuses the string instead of passing it on.
    const typed = await app.inject({ method: 'GET', url: url({ price: '1 OR 1=1' }) });
    assertProblem(typed, 422, 'INVALID_LIST_QUERY');

    const { rows: left } = await sql<{
      n: string;
    }>`select count(*) as n from widgets where to_regclass('widgets') is not null`.execute(db);
    assert.equal(Number(left[0]?.n), rows.length, 'the table and all its rows are still there');
  });

  test('soft-deleted rows are never listed; restored rows come back', async () => {
    const victim = rows[100] as Seed;
    const before = await ordered('created_at desc, id desc');
    assert.ok(before.includes(victim.id));

    const del = await app.inject({ method: 'DELETE', url: `/api/v1/widgets/${victim.id}` });
    assert.equal(del.statusCode, 204, del.body);
    assert.equal(del.body, '');
    const { rows: stored } = await sql<{
      deleted: boolean;
    }>`select deleted_at is not null as deleted from widgets where id = ${victim.id}`.execute(db);
    assert.deepEqual(stored, [{ deleted: true }], 'the row is kept, marked deleted');

    assert.deepEqual(
      await walk({ limit: '100' }),
      before.filter((id) => id !== victim.id),
    );
    assert.deepEqual(await walk({ name: victim.name, limit: '100' }), [
      ...(await expected((s) => s.name === victim.name && s.id !== victim.id)),
    ]);
    const total = (await list({ page: '1', size: '10' })).page.total;
    assert.equal(total, rows.length - 1);
    assert.equal((await list({ q: 'quokka', page: '1' })).page.total, 5);

    const again = await app.inject({ method: 'DELETE', url: `/api/v1/widgets/${victim.id}` });
    assertProblem(again, 404, 'NOT_FOUND');
    const unknown = await app.inject({ method: 'DELETE', url: `/api/v1/widgets/${newId()}` });
    assertProblem(unknown, 404, 'NOT_FOUND');
    const malformed = await app.inject({ method: 'DELETE', url: '/api/v1/widgets/not-a-uuid' });
    assert.ok(malformed.statusCode >= 400 && malformed.statusCode < 500, malformed.body);

    const restore = await app.inject({
      method: 'POST',
      url: `/api/v1/widgets/${victim.id}/restore`,
    });
    assert.equal(restore.statusCode, 204, restore.body);
    assert.deepEqual(await walk({ limit: '100' }), before);
    const twice = await app.inject({ method: 'POST', url: `/api/v1/widgets/${victim.id}/restore` });
    assertProblem(twice, 404, 'NOT_FOUND');
  });
});

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Index Cond'?: string;
  'Rows Removed by Filter'?: number;
  Plans?: PlanNode[];
}

function flatten(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(flatten)];
}

describe('the hot list queries are served by indexes (EXPLAIN, 5,000 rows)', () => {
  let tdb: TestDatabase;
  let db: Kysely<WidgetsDB>;
  const options: PaginateOptions = {
    secret: 'explain-test-secret-0000000000000000',
    estimateAbove: 0,
  };

  before(async () => {
    tdb = await createTestDatabase();
    db = tablesOf<WidgetsDB>(tdb.database.db); // a view of the test database with only widgets
    await createWidgetsTable(db);
    const base = Date.parse('2026-01-01T00:00:00Z');
    const many: Seed[] = [];
    for (let i = 0; i < 5000; i++) {
      const createdAt = new Date(base + Math.floor(i / 3) * 1000).toISOString();
      many.push({
        id: newId(),
        name: `Widget ${(i * 7919) % 997}`,
        description: i % 1000 === 17 ? 'a rare quokka' : `plain thing number ${i}`,
        status: ['active', 'draft', 'retired'][i % 3] as string,
        price: (i * 7919) % 10_000,
        createdAt,
        micros: 0,
      });
    }
    await insertSeeds(db, shuffle(many, 7));
    await sql`analyze widgets`.execute(db);
  });
  after(() => tdb?.drop());

  /** The plan (with actual row counts) of the query `listWidgets` runs for `query`. */
  async function explain(query: Record<string, string>): Promise<PlanNode[]> {
    const captured: CompiledQuery[] = [];
    // A second Kysely on the same pool, logging the SQL and parameters the listing sends.
    const capturing = new Kysely<WidgetsDB>({
      dialect: new PostgresDialect({ pool: tdb.database.pool }),
      log: (event) => {
        if (event.level === 'query') captured.push(event.query);
      },
    });
    await listWidgets(capturing, query, options);
    assert.equal(captured.length, 1, 'a keyset page is one query');
    const [listQuery] = captured as [CompiledQuery];
    const { rows } = await tdb.database.pool.query<{ 'QUERY PLAN': { Plan: PlanNode }[] }>(
      `explain (analyze, format json) ${listQuery.sql}`,
      [...listQuery.parameters],
    );
    const plan = rows[0]?.['QUERY PLAN'][0]?.Plan;
    assert.ok(plan);
    return flatten(plan);
  }

  /** A cursor into the middle of the listing (row 2,500 of 5,000). */
  async function middleCursor(query: Record<string, string>): Promise<string> {
    let cursor: string | null = null;
    for (let i = 0; i < 25; i++) {
      const page = await listWidgets(
        db,
        { ...query, limit: '100', ...(cursor === null ? {} : { cursor }) },
        options,
      );
      cursor = page.page.nextCursor;
    }
    assert.ok(cursor);
    return cursor;
  }

  function assertServedBy(plan: PlanNode[], index: string, { sorted }: { sorted: boolean }) {
    const text = JSON.stringify(plan.map((n) => [n['Node Type'], n['Index Name']]));
    assert.equal(
      plan.some((n) => n['Node Type'] === 'Seq Scan'),
      false,
      `no sequential scan: ${text}`,
    );
    const scan = plan.find((n) => n['Index Name'] === index);
    assert.ok(scan, `uses ${index}: ${text}`);
    assert.match(scan['Node Type'], /^(Index Scan|Index Only Scan|Bitmap Index Scan)$/);
    if (sorted)
      assert.equal(
        plan.some((n) => n['Node Type'] === 'Sort'),
        false,
        `the index gives the order, no sort: ${text}`,
      );
    return scan;
  }

  /** Rows the scan read and threw away: a keyset page must seek, not skip from the start. */
  function discarded(plan: PlanNode[]): number {
    return plan.reduce((n, p) => n + (p['Rows Removed by Filter'] ?? 0), 0);
  }

  test('the first page by -createdAt reads the (created_at desc, id desc) index', async () => {
    const plan = await explain({});
    assertServedBy(plan, WidgetIndexes.createdAt, { sorted: true });
    assert.ok(discarded(plan) <= 20, `discarded ${discarded(plan)}`);
  });

  test('a later page by -createdAt seeks into the index at the cursor', async () => {
    const cursor = await middleCursor({});
    const plan = await explain({ cursor });
    const scan = assertServedBy(plan, WidgetIndexes.createdAt, { sorted: true });
    assert.match(scan['Index Cond'] ?? '', /created_at/, 'the cursor bounds the index scan');
    assert.ok(discarded(plan) <= 20, `discarded ${discarded(plan)} rows before the cursor`);
  });

  test('the name sort reads the (name, id) index, first and later pages', async () => {
    assertServedBy(await explain({ sort: 'name' }), WidgetIndexes.name, { sorted: true });
    const cursor = await middleCursor({ sort: 'name' });
    const plan = await explain({ sort: 'name', cursor });
    const scan = assertServedBy(plan, WidgetIndexes.name, { sorted: true });
    assert.match(scan['Index Cond'] ?? '', /name/);
    assert.ok(discarded(plan) <= 20, `discarded ${discarded(plan)} rows before the cursor`);
  });

  test('the price sort reads the (price, id) index', async () => {
    assertServedBy(await explain({ sort: 'price' }), WidgetIndexes.price, { sorted: true });
  });

  test('a status filter reads the status index in the default order', async () => {
    const plan = await explain({ status: 'draft' });
    const scan = assertServedBy(plan, WidgetIndexes.status, { sorted: true });
    assert.match(scan['Index Cond'] ?? '', /status/);
  });

  test('search reads the GIN index on the exact expression the helper generates', async () => {
    const plan = await explain({ q: 'quokka' });
    const scan = assertServedBy(plan, WidgetIndexes.search, { sorted: false });
    assert.equal(scan['Node Type'], 'Bitmap Index Scan');
    const page = await listWidgets(db, { q: 'quokka' }, options);
    assert.equal(page.items.length, 5);
  });

  test('statements compiled once per listing shape send the same SQL and values, and give the same pages, as building each query', async () => {
    const sent: { sql: string; parameters: readonly unknown[] }[] = [];
    const capturing = new Kysely<WidgetsDB>({
      dialect: new PostgresDialect({ pool: tdb.database.pool }),
      log: (event) => {
        if (event.level === 'query')
          sent.push({ sql: event.query.sql, parameters: event.query.parameters });
      },
    });
    const queries: Record<string, string>[] = [
      {},
      { sort: 'name' },
      { sort: '-price,name', limit: '13' },
      { status: 'active' },
      { 'status[in]': 'active,draft' },
      { 'status[in]': 'active,draft,retired' },
      { 'name[contains]': '9_%' },
      { 'price[gte]': '100', 'price[lte]': '5000', sort: 'price' },
      { q: 'quokka' },
      { q: 'plain', status: 'draft', limit: '5' },
    ];
    for (const query of queries) {
      // Three pages each: the first-page statement and the after-cursor one, reused on page 3.
      let cursors: (string | null)[] = [null, null];
      for (let page = 0; page < 3; page++) {
        const pages = [];
        for (const [i, list] of [listWidgets, listWidgetsUncached].entries()) {
          const cursor = cursors[i];
          const q = cursor === null || cursor === undefined ? query : { ...query, cursor };
          pages.push(await list(capturing, q, options));
        }
        const [cached, built] = pages as [Page<unknown>, Page<unknown>];
        assert.deepEqual(cached, built, JSON.stringify(query));
        const [a, b] = sent.splice(-2) as [(typeof sent)[0], (typeof sent)[0]];
        assert.equal(a.sql, b.sql, JSON.stringify(query));
        assert.deepEqual(a.parameters, b.parameters, JSON.stringify(query));
        cursors = [cached.page.nextCursor, built.page.nextCursor];
        if (cached.page.nextCursor === null) break;
      }
    }
  });
});
