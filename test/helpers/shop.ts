// The shop's test harness: the real app with the shop mounted as src/apps/index.ts would mount it,
// its migrations in the one history, workers on (mail, events, file processing), local storage in
// a temporary folder, and the fake payment provider.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApp, enabledModules } from '../../src/app.ts';
import { createShopApp, FakePaymentProvider } from '../../src/apps/shop/index.ts';
import { allMigrations } from '../../src/migrations/index.ts';
import type { Config } from '../../src/platform/config/index.ts';
import type { AnyModule, Platform } from '../../src/platform/modules/index.ts';
import { createPlatform } from '../../src/platform/runtime/index.ts';
import { LogCapture, testConfig } from './app.ts';
import { createTestDatabase, type TestDatabase } from './db.ts';
import { bearer, createUser, signIn, signInAdmin, type TestUser } from './identity.ts';

export const SHOP = '/api/v1/shop';

export interface ShopHarness {
  config: Config;
  tdb: TestDatabase;
  platform: Platform;
  app: FastifyInstance;
  shop: AnyModule;
  payments: FakePaymentProvider;
  logs: LogCapture;
  admin: Record<string, string>;
  customer(): Promise<{ user: TestUser; headers: Record<string, string> }>;
  /** app.inject with a JSON body under /api/v1/shop. */
  call(
    method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
    path: string,
    headers?: Record<string, string>,
    payload?: unknown,
  ): Promise<LightMyRequestResponse>;
  sql<T extends pg.QueryResultRow = Record<string, unknown>>(
    text: string,
    values?: unknown[],
  ): Promise<T[]>;
  close(): Promise<void>;
}

export async function startShop(overrides: Record<string, string> = {}): Promise<ShopHarness> {
  const dir = await mkdtemp(join(tmpdir(), 'gw-shop-'));
  const payments = new FakePaymentProvider();
  const shop = createShopApp({ payments });
  const config = testConfig(
    {
      STORAGE_LOCAL_DIR: dir,
      JOBS_POLL_INTERVAL_MS: '500',
      JOBS_SUPERVISE_INTERVAL_S: '1',
      RATE_LIMIT_ENABLED: 'false',
      ...overrides,
    },
    [shop],
  );
  const tdb = await createTestDatabase({ config, migrations: allMigrations([shop]) });
  const logs = new LogCapture();
  const platform = await createPlatform(config, {
    modules: enabledModules(config, [shop]),
    database: tdb.database,
    redis: null,
    work: true,
    logDestination: logs,
    mailRetry: { retries: 1, initialSeconds: 1, maxSeconds: 1 },
  });
  const app = await buildApp(config, { platform, apps: [shop] });
  await app.ready();
  const base = { tdb, config };
  const { headers: admin } = await signInAdmin(app, base);
  return {
    config,
    tdb,
    platform,
    app,
    shop,
    payments,
    logs,
    admin,
    async customer() {
      const user = await createUser(base);
      return { user, headers: bearer((await signIn(app, user)).accessToken) };
    },
    call(method, path, headers = {}, payload = undefined) {
      return app.inject({
        method,
        url: `${SHOP}${path}`,
        headers,
        ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
      });
    },
    async sql<T extends pg.QueryResultRow>(text: string, values: unknown[] = []) {
      return (await tdb.database.pool.query<T>(text, values)).rows;
    },
    async close() {
      await app.close();
      await platform.close();
      await tdb.drop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

let seq = 0;
/** A unique suffix for slugs and SKUs within a test file. */
export function uniq(prefix: string): string {
  seq += 1;
  return `${prefix}-${process.pid}-${seq}`;
}

/** Creates a category through the API; returns its JSON. */
export async function category(
  h: ShopHarness,
  input: { slug?: string; name?: string; parentId?: string | null } = {},
): Promise<{ id: string; slug: string; path?: string }> {
  const slug = input.slug ?? uniq('cat');
  const res = await h.call('POST', '/categories', h.admin, {
    slug,
    name: input.name ?? slug,
    ...(input.parentId !== undefined ? { parentId: input.parentId } : {}),
  });
  if (res.statusCode !== 201) throw new Error(`category: ${res.statusCode} ${res.body}`);
  return res.json();
}

export interface ItemJson {
  id: string;
  sku: string;
  slug: string;
  price: number;
  currency: string;
  stock: number;
  version: number;
}

/** Creates an item through the API; returns its JSON. */
export async function item(
  h: ShopHarness,
  input: {
    categoryId: string;
    price?: number;
    currency?: string;
    stock?: number;
    name?: string;
    description?: string;
    attributes?: Record<string, unknown>;
    active?: boolean;
    images?: string[];
  },
): Promise<ItemJson> {
  const sku = uniq('SKU').toUpperCase();
  const res = await h.call('POST', '/items', h.admin, {
    sku,
    slug: sku.toLowerCase(),
    name: input.name ?? `Item ${sku}`,
    description: input.description ?? '',
    price: input.price ?? 1000,
    currency: input.currency ?? 'EUR',
    stock: input.stock ?? 10,
    categoryId: input.categoryId,
    ...(input.attributes ? { attributes: input.attributes } : {}),
    ...(input.active !== undefined ? { active: input.active } : {}),
    ...(input.images ? { images: input.images } : {}),
  });
  if (res.statusCode !== 201) throw new Error(`item: ${res.statusCode} ${res.body}`);
  return res.json();
}

export const ADDRESS = {
  name: 'Ada Lovelace',
  line1: '12 St James Square',
  city: 'London',
  postalCode: 'SW1Y 4JH',
  country: 'GB',
};

let keySeq = 0;
export function idempotencyKey(): { 'idempotency-key': string } {
  keySeq += 1;
  return { 'idempotency-key': `order-${process.pid}-${keySeq}-${Date.now()}` };
}

/**
 * Counts the statements every pg client of this process sends while `fn` runs (those whose text
 * matches `filter`): the N+1 check.
 */
export async function countStatements<T>(
  fn: () => Promise<T>,
  filter: RegExp = /shop_/,
): Promise<{ result: T; statements: string[]; queries: { text: string; values: unknown[] }[] }> {
  const statements: string[] = [];
  const queries: { text: string; values: unknown[] }[] = [];
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  proto.query = function (this: unknown, ...args: unknown[]) {
    const first = args[0];
    const text = typeof first === 'string' ? first : (first as { text?: string } | undefined)?.text;
    if (typeof text === 'string' && filter.test(text)) {
      statements.push(text);
      const values =
        typeof first === 'string' ? args[1] : ((first as { values?: unknown[] }).values ?? args[1]);
      queries.push({ text, values: Array.isArray(values) ? values : [] });
    }
    return original.apply(this, args);
  };
  try {
    const result = await fn();
    return { result, statements, queries };
  } finally {
    proto.query = original;
  }
}
