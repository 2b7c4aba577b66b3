import {
  DummyDriver,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
} from 'kysely';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  DEFAULT_LIMIT,
  MAX_LIMIT,
  applyListFilters,
  listQuerySchema,
  parseListQuery,
  type ListQuery,
  type ListSpec,
} from '../../src/platform/db/index.ts';
import { HttpError } from '../../src/platform/http/index.ts';

const spec: ListSpec = {
  name: 'things',
  filters: {
    name: { column: 'name', type: 'string', ops: ['eq', 'in', 'contains'] },
    status: { column: 'status', type: 'string', ops: ['eq', 'in'] },
    price: { column: 'price', type: 'integer', ops: ['gte', 'lte', 'eq', 'in'] },
    weight: { column: 'weight', type: 'number', ops: ['gte'] },
    active: { column: 'is_active', type: 'boolean', ops: ['eq'] },
    createdAt: { column: 'created_at', type: 'timestamp', ops: ['gte', 'lte'] },
    ownerId: { column: 'owner_id', type: 'uuid', ops: ['eq', 'in'] },
  },
  sorts: { createdAt: 'created_at', name: 'name', price: 'price' },
  defaultSort: '-createdAt',
  search: { columns: ['name', 'description'], config: 'english' },
};

/** The field errors of the 422 a query gets. */
function errorsOf(query: Record<string, unknown>, s: ListSpec = spec) {
  let errors: { path: string; message: string }[] = [];
  assert.throws(
    () => parseListQuery(s, query),
    (error: unknown) => {
      assert.ok(error instanceof HttpError, String(error));
      assert.equal(error.code, 'INVALID_LIST_QUERY');
      assert.equal(error.status, 422);
      errors = error.errors ?? [];
      return true;
    },
  );
  return errors;
}

function onlyError(query: Record<string, unknown>): { path: string; message: string } {
  const errors = errorsOf(query);
  assert.equal(errors.length, 1, JSON.stringify(errors));
  return errors[0] as { path: string; message: string };
}

/** A compiler-only Kysely: builds SQL, never connects. */
const compiler = new Kysely<Record<string, Record<string, unknown>>>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (db) => new PostgresIntrospector(db),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  },
});

function compile(list: ListQuery) {
  return applyListFilters(spec, list, compiler.selectFrom('things').selectAll()).compile();
}

describe('parseListQuery', () => {
  test('defaults: keyset, limit 20, the default sort, no filters or search', () => {
    assert.equal(DEFAULT_LIMIT, 20);
    assert.equal(MAX_LIMIT, 100);
    assert.deepEqual(parseListQuery(spec, {}), {
      filters: [],
      sort: [{ field: 'createdAt', column: 'created_at', desc: true }],
      search: null,
      mode: 'keyset',
      limit: 20,
      cursor: null,
      page: 1,
      count: true,
    });
  });

  test('keyset: limit and cursor', () => {
    const list = parseListQuery(spec, { limit: '100', cursor: 'abc.def' });
    assert.equal(list.mode, 'keyset');
    assert.equal(list.limit, 100);
    assert.equal(list.cursor, 'abc.def');
    assert.equal(parseListQuery(spec, { limit: '1' }).limit, 1);
    assert.equal(parseListQuery(spec, { cursor: '' }).cursor, '', 'an empty cursor is checked');
  });

  test('limit must be an integer from 1 to 100', () => {
    for (const limit of ['0', '-1', '101', 'abc', '1.5', '', ' 5', '1e2', '0x10', '9999999999']) {
      assert.deepEqual(
        onlyError({ limit }),
        { path: '/query/limit', message: 'must be an integer from 1 to 100' },
        `limit=${JSON.stringify(limit)}`,
      );
    }
    assert.equal(onlyError({ limit: ['1', '2'] }).path, '/query/limit');
  });

  test('offset: page with size (or limit), and count', () => {
    assert.deepEqual(parseListQuery(spec, { page: '3', size: '50' }), {
      ...parseListQuery(spec, {}),
      mode: 'offset',
      page: 3,
      limit: 50,
    });
    assert.equal(parseListQuery(spec, { page: '2' }).limit, 20);
    assert.equal(parseListQuery(spec, { page: '2', limit: '30' }).limit, 30);
    assert.equal(parseListQuery(spec, { page: '2', size: '40', limit: '30' }).limit, 40);
    assert.equal(parseListQuery(spec, { page: '1', count: 'false' }).count, false);
    assert.equal(parseListQuery(spec, { page: '1', count: 'true' }).count, true);
    assert.equal(parseListQuery(spec, { page: '1000000' }).page, 1_000_000);
  });

  test('offset errors name page, size, count and a cursor given with a page', () => {
    assert.deepEqual(onlyError({ page: '0' }), {
      path: '/query/page',
      message: 'must be an integer from 1 to 1000000',
    });
    assert.equal(onlyError({ page: '1000001' }).path, '/query/page');
    assert.equal(onlyError({ page: 'first' }).path, '/query/page');
    assert.deepEqual(onlyError({ page: '1', size: '101' }), {
      path: '/query/size',
      message: 'must be an integer from 1 to 100',
    });
    assert.equal(onlyError({ page: '1', limit: '0' }).path, '/query/limit');
    assert.deepEqual(onlyError({ page: '1', count: 'no' }), {
      path: '/query/count',
      message: 'must be true or false',
    });
    assert.deepEqual(onlyError({ page: '1', cursor: 'x' }), {
      path: '/query/cursor',
      message: 'use either cursor or page, not both',
    });
    assert.deepEqual(onlyError({ cursor: ['a', 'b'] }), {
      path: '/query/cursor',
      message: 'must be given once',
    });
  });

  test('sort: comma-separated fields, - for descending, duplicates ignored', () => {
    assert.deepEqual(parseListQuery(spec, { sort: '-createdAt,name' }).sort, [
      { field: 'createdAt', column: 'created_at', desc: true },
      { field: 'name', column: 'name', desc: false },
    ]);
    assert.deepEqual(parseListQuery(spec, { sort: ' price , -name ' }).sort, [
      { field: 'price', column: 'price', desc: false },
      { field: 'name', column: 'name', desc: true },
    ]);
    assert.deepEqual(parseListQuery(spec, { sort: 'name,-name' }).sort, [
      { field: 'name', column: 'name', desc: false },
    ]);
    assert.deepEqual(parseListQuery(spec, { sort: '' }).sort, parseListQuery(spec, {}).sort);
  });

  test('unknown sort fields are named, with the allowed ones', () => {
    assert.deepEqual(onlyError({ sort: '-color' }), {
      path: '/query/sort',
      message: 'cannot sort by "color"; allowed: createdAt, name, price',
    });
    const errors = errorsOf({ sort: 'color,name,size,created_at' });
    assert.deepEqual(
      errors.map((e) => e.message.match(/"([^"]*)"/)?.[1]),
      ['color', 'size', 'created_at'],
      'columns are not sort fields; each unknown one is named',
    );
    for (const sort of ['constructor', '__proto__', 'toString', '--name', 'name,']) {
      assert.equal(onlyError({ sort }).path, '/query/sort', sort);
    }
  });

  test('filters: eq by default or explicit, typed values', () => {
    const { filters } = parseListQuery(spec, {
      name: 'Ada',
      'status[eq]': 'active',
      'price[gte]': '10',
      'price[lte]': '-5',
      'weight[gte]': '2.5',
      active: 'false',
      'createdAt[gte]': '2026-03-01T10:00:00.123456Z',
      'createdAt[lte]': '2026-03-02',
      ownerId: '0195D3C2-7A4E-7B1C-9F00-0123456789AB',
    });
    assert.deepEqual(filters, [
      { field: 'name', column: 'name', op: 'eq', value: 'Ada' },
      { field: 'status', column: 'status', op: 'eq', value: 'active' },
      { field: 'price', column: 'price', op: 'gte', value: 10 },
      { field: 'price', column: 'price', op: 'lte', value: -5 },
      { field: 'weight', column: 'weight', op: 'gte', value: 2.5 },
      { field: 'active', column: 'is_active', op: 'eq', value: false },
      { field: 'createdAt', column: 'created_at', op: 'gte', value: '2026-03-01T10:00:00.123456Z' },
      { field: 'createdAt', column: 'created_at', op: 'lte', value: '2026-03-02' },
      {
        field: 'ownerId',
        column: 'owner_id',
        op: 'eq',
        value: '0195d3c2-7a4e-7b1c-9f00-0123456789ab',
      },
    ]);
  });

  test('in: comma-separated values of the field type; contains: a string', () => {
    const { filters } = parseListQuery(spec, {
      'price[in]': '1,2,3',
      'status[in]': 'a,b',
      'name[contains]': "50% off_' --",
    });
    assert.deepEqual(filters, [
      { field: 'price', column: 'price', op: 'in', value: [1, 2, 3] },
      { field: 'status', column: 'status', op: 'in', value: ['a', 'b'] },
      { field: 'name', column: 'name', op: 'contains', value: "50% off_' --" },
    ]);
    assert.deepEqual(onlyError({ 'price[in]': '1,x' }), {
      path: '/query/price[in]',
      message: 'must be up to 100 comma-separated integer values',
    });
    assert.equal(
      onlyError({ 'status[in]': Array.from({ length: 101 }, (_, i) => `s${i}`).join(',') }).path,
      '/query/status[in]',
    );
    assert.equal(
      parseListQuery(spec, {
        'status[in]': Array.from({ length: 100 }, (_, i) => `s${i}`).join(','),
      }).filters.length,
      1,
    );
  });

  test('values of the wrong type are named with the type', () => {
    const cases: [Record<string, string>, string, string][] = [
      [{ price: '1.5' }, '/query/price', 'must be a integer'],
      [{ price: '1 OR 1=1' }, '/query/price', 'must be a integer'],
      [{ price: '1e3' }, '/query/price', 'must be a integer'],
      [{ price: '' }, '/query/price', 'must be a integer'],
      [{ 'weight[gte]': 'heavy' }, '/query/weight[gte]', 'must be a number'],
      [{ 'weight[gte]': ' ' }, '/query/weight[gte]', 'must be a number'],
      [{ active: 'yes' }, '/query/active', 'must be a boolean'],
      [{ 'createdAt[gte]': 'yesterday' }, '/query/createdAt[gte]', 'must be a timestamp'],
      [{ 'createdAt[gte]': '2026-13-45' }, '/query/createdAt[gte]', 'must be a timestamp'],
      [{ ownerId: 'not-a-uuid' }, '/query/ownerId', 'must be a uuid'],
      [{ name: 'x'.repeat(501) }, '/query/name', 'must be a string'],
    ];
    for (const [query, path, message] of cases) {
      assert.deepEqual(onlyError(query), { path, message }, JSON.stringify(query));
    }
    assert.deepEqual(onlyError({ name: ['a', 'b'] }), {
      path: '/query/name',
      message: 'must be given once',
    });
  });

  test('unknown filter fields and disallowed or unknown operators are named', () => {
    assert.deepEqual(onlyError({ color: 'red' }), {
      path: '/query/color',
      message:
        'unknown filter "color"; allowed: name, status, price, weight, active, createdAt, ownerId',
    });
    assert.deepEqual(onlyError({ 'status[gte]': 'a' }), {
      path: '/query/status[gte]',
      message: 'operator "gte" is not allowed on "status"; allowed: eq, in',
    });
    assert.deepEqual(onlyError({ 'price[regex]': '1' }), {
      path: '/query/price[regex]',
      message: 'operator "regex" is not allowed on "price"; allowed: gte, lte, eq, in',
    });
    for (const key of ['price[gte', 'price[]', 'price[GTE]', 'constructor', '__proto__', 'a-b']) {
      assert.equal(onlyError({ [key]: '1' }).path, `/query/${key}`, key);
    }
    const noFilters: ListSpec = { name: 'bare', sorts: { id: 'id' }, defaultSort: 'id' };
    assert.deepEqual(errorsOf({ anything: '1' }, noFilters), [
      { path: '/query/anything', message: 'unknown filter "anything"' },
    ]);
  });

  test('search: q, trimmed-empty is no search, at most 200 characters, only where declared', () => {
    assert.equal(parseListQuery(spec, { q: 'quokka' }).search, 'quokka');
    assert.equal(parseListQuery(spec, { q: '   ' }).search, null);
    assert.equal(parseListQuery(spec, { q: 'x'.repeat(200) }).search?.length, 200);
    assert.deepEqual(onlyError({ q: 'x'.repeat(201) }), {
      path: '/query/q',
      message: 'must be a string of at most 200 characters',
    });
    const noSearch: ListSpec = { name: 'bare', sorts: { id: 'id' }, defaultSort: 'id' };
    assert.deepEqual(errorsOf({ q: 'x' }, noSearch), [
      { path: '/query/q', message: 'this listing has no search' },
    ]);
  });

  test('every problem is reported at once', () => {
    const errors = errorsOf({
      limit: '0',
      sort: 'color',
      colour: 'red',
      'status[gte]': 'a',
      price: 'cheap',
      q: 'x'.repeat(300),
    });
    assert.deepEqual(errors.map((e) => e.path).sort(), [
      '/query/colour',
      '/query/limit',
      '/query/price',
      '/query/q',
      '/query/sort',
      '/query/status[gte]',
    ]);
  });
});

describe('list conditions', () => {
  test('every value is a bound parameter, never part of the SQL text', () => {
    const evil = "' OR 1=1 --";
    const list = parseListQuery(spec, {
      name: evil,
      'status[in]': `${evil},"; drop table things; --`,
      'price[gte]': '5',
      'name[contains]': evil,
      q: evil,
    });
    const { sql, parameters } = compile(list);
    assert.equal(sql.includes('OR 1=1'), false, sql);
    assert.equal(sql.includes('drop table'), false, sql);
    assert.deepEqual(parameters, [evil, evil, '"; drop table things; --', 5, `%${evil}%`, evil]);
    assert.match(sql, /"name" = \$1/);
    assert.match(sql, /"status" in \(\$2, \$3\)/);
    assert.match(sql, /"price" >= \$4/);
    assert.match(sql, /"name" ilike \$5/);
    assert.match(
      sql,
      /to_tsvector\('english'::regconfig, coalesce\("name"::text, ''\) \|\| ' ' \|\| coalesce\("description"::text, ''\)\) @@ websearch_to_tsquery\('english'::regconfig, \$6\)/,
    );
  });

  test('contains escapes LIKE wildcards, so %, _ and \\ match literally', () => {
    const cases: [string, string][] = [
      ['%', '%\\%%'],
      ['_', '%\\_%'],
      ['\\', '%\\\\%'],
      ['100%_\\x', '%100\\%\\_\\\\x%'],
      ['plain', '%plain%'],
    ];
    for (const [value, pattern] of cases) {
      const { parameters } = compile(parseListQuery(spec, { 'name[contains]': value }));
      assert.deepEqual(parameters, [pattern], value);
    }
  });

  test('no filters and no search add no condition with a value', () => {
    const { parameters } = compile(parseListQuery(spec, {}));
    assert.deepEqual(parameters, []);
  });

  test('the querystring schema documents each filter operator and the sorts', () => {
    const schema = listQuerySchema(spec) as unknown as {
      properties: Record<string, { default?: string }>;
      additionalProperties: boolean;
    };
    const keys = Object.keys(schema.properties);
    for (const key of [
      'limit',
      'cursor',
      'page',
      'size',
      'count',
      'sort',
      'q',
      'name',
      'name[in]',
      'name[contains]',
      'price[gte]',
      'createdAt[lte]',
    ])
      assert.ok(keys.includes(key), key);
    assert.equal(keys.includes('status[gte]'), false);
    assert.equal(schema.properties.sort?.default, '-createdAt');
    assert.equal(schema.additionalProperties, true, 'unknown keys reach parseListQuery for a 422');
  });
});
