// The spots app's test harness: the real app with the spots module mounted as src/apps/index.ts
// would mount it, its migrations in the one history, workers and event dispatch on, storage in
// a temporary folder.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { spotsApp } from '../../src/apps/spots/index.ts';
import { buildApp, enabledModules } from '../../src/app.ts';
import { allMigrations } from '../../src/migrations/index.ts';
import type { Config } from '../../src/platform/config/index.ts';
import type { Platform } from '../../src/platform/modules/index.ts';
import { createPlatform } from '../../src/platform/runtime/index.ts';
import { multipart } from '../fixtures/files/samples.ts';
import { LogCapture, testConfig } from './app.ts';
import { createTestDatabase, type TestDatabase } from './db.ts';
import type { TokenPair } from '../../src/platform/identity/index.ts';
import { bearer, createUser, grantRoles, type TestUser } from './identity.ts';

export interface SpotsUser {
  user: TestUser;
  headers: Record<string, string>;
}

export interface SpotJson {
  id: string;
  ownerId: string;
  name: string;
  description: string;
  address: string | null;
  category: string;
  tags: string[];
  language: string;
  location: { lat: number; lng: number };
  distanceM?: number;
  favouriteCount: number;
  coverPictureId: string | null;
  cover: PictureJson | null;
  status: 'visible' | 'pending' | 'hidden';
  moderationReason?: string | null;
  createdAt: string;
  updatedAt: string;
  pictures?: PictureJson[];
}

export interface PictureJson {
  id: string;
  spotId: string;
  fileId: string;
  caption: string | null;
  status: 'processing' | 'ready' | 'failed';
  width: number | null;
  height: number | null;
  blurhash: string | null;
  path: string | null;
  variants: { id: string; width: number; height: number; contentType: string; path: string }[];
}

export interface SpotPageJson {
  items: SpotJson[];
  page: { limit: number; nextCursor: string | null; hasMore: boolean };
  truncated?: boolean;
  search?: 'text' | 'fuzzy' | 'none';
}

export interface SpotsHarness {
  config: Config;
  tdb: TestDatabase;
  platform: Platform;
  app: FastifyInstance;
  logs: LogCapture;
  user(...roles: string[]): Promise<SpotsUser>;
  /** Creates a spot through the API (201 asserted). */
  spot(who: SpotsUser, body?: Record<string, unknown>): Promise<SpotJson>;
  /** Uploads an image of `purpose` (default `spots.picture`) through `POST /files`; its id. */
  upload(who: SpotsUser, data: Buffer, purpose?: string): Promise<string>;
  list(query: string, headers?: Record<string, string>): Promise<SpotPageJson>;
  close(): Promise<void>;
}

let counter = 0;
let signIns = 0;

export async function startSpotsHarness(
  overrides: Record<string, string> = {},
): Promise<SpotsHarness> {
  const dir = await mkdtemp(join(tmpdir(), 'gw-spots-'));
  const config = testConfig(
    {
      STORAGE_LOCAL_DIR: dir,
      JOBS_POLL_INTERVAL_MS: '500',
      JOBS_SUPERVISE_INTERVAL_S: '1',
      EVENTS_POLL_INTERVAL_MS: '200',
      FILES_PROCESSING_CONCURRENCY: '1',
      SPOTS_FAVOURITE_RECOUNT_DELAY_S: '0',
      PUBLIC_URL: 'https://spots.example.test',
      ...overrides,
    },
    [spotsApp],
  );
  const tdb = await createTestDatabase({ config, migrations: allMigrations([spotsApp]) });
  const logs = new LogCapture();
  const platform = await createPlatform(config, {
    modules: enabledModules(config, [spotsApp]),
    database: tdb.database,
    redis: null,
    work: true,
    logDestination: logs,
  });
  const app = await buildApp(config, { platform, apps: [spotsApp] });
  await app.ready();
  const h: SpotsHarness = {
    config,
    tdb,
    platform,
    app,
    logs,
    async user(...roles) {
      const user = await createUser(h);
      if (roles.length > 0) await grantRoles(h, user.id, ...roles);
      // Each from its own address: tests that turn rate limits on sign in many users, and the
      // sign-in limit is per IP.
      signIns += 1;
      const res = await app.inject({
        method: 'POST',
        url: '/api/v1/auth/login',
        payload: { login: user.email, password: user.password },
        remoteAddress: `10.${String(Math.floor(signIns / 250) % 250)}.${String(signIns % 250)}.7`,
      });
      assert.equal(res.statusCode, 200, res.body);
      return { user, headers: bearer(res.json<TokenPair>().accessToken) };
    },
    async spot(who, body = {}) {
      counter += 1;
      const res = await app.inject({
        method: 'POST',
        url: '/api/v1/spots',
        headers: who.headers,
        payload: {
          name: `Spot ${String(counter)}`,
          location: { lat: 48.8584, lng: 2.2945 },
          category: 'viewpoint',
          ...body,
        },
      });
      assert.equal(res.statusCode, 201, res.body);
      return res.json<SpotJson>();
    },
    async upload(who, data, purpose = 'spots.picture') {
      const form = multipart([
        { name: 'purpose', data: purpose },
        { name: 'file', filename: 'spot.png', contentType: 'image/png', data },
      ]);
      const res = await app.inject({
        method: 'POST',
        url: '/api/v1/files',
        headers: { ...who.headers, 'content-type': form.contentType },
        payload: form.body,
      });
      assert.equal(res.statusCode, 201, res.body);
      return res.json<{ id: string }>().id;
    },
    async list(query, headers = {}) {
      const res = await app.inject({ method: 'GET', url: `/api/v1/spots?${query}`, headers });
      assert.equal(res.statusCode, 200, res.body);
      return res.json<SpotPageJson>();
    },
    async close() {
      await app.close();
      await platform.close();
      await tdb.drop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return h;
}
