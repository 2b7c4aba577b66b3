// The public data app's tests: the real app with identity, events, files and public-data,
// workers on (the import job), storage in a temporary folder.
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp, enabledModules } from '../../src/app.ts';
import { publicDataApp } from '../../src/apps/public-data/index.ts';
import { allMigrations } from '../../src/migrations/index.ts';
import type { Config } from '../../src/platform/config/index.ts';
import { newId } from '../../src/platform/db/index.ts';
import type { Platform } from '../../src/platform/modules/index.ts';
import { createPlatform } from '../../src/platform/runtime/index.ts';
import { multipart } from '../fixtures/files/samples.ts';
import { LogCapture, testConfig } from './app.ts';
import { createTestDatabase, type TestDatabase } from './db.ts';
import { signInAdmin, type TestUser } from './identity.ts';

export interface PublicDataHarness {
  config: Config;
  tdb: TestDatabase;
  platform: Platform;
  app: FastifyInstance;
  logs: LogCapture;
  admin: { user: TestUser; headers: Record<string, string> };
  close(): Promise<void>;
}

export async function startPublicData(
  overrides: Record<string, string> = {},
): Promise<PublicDataHarness> {
  const dir = await mkdtemp(join(tmpdir(), 'gw-public-data-'));
  const config = testConfig(
    {
      STORAGE_LOCAL_DIR: dir,
      JOBS_POLL_INTERVAL_MS: '500',
      JOBS_SUPERVISE_INTERVAL_S: '1',
      PUBLIC_URL: 'https://api.example.test',
      ...overrides,
    },
    [publicDataApp],
  );
  const tdb = await createTestDatabase({ config, migrations: allMigrations([publicDataApp]) });
  const logs = new LogCapture();
  const platform = await createPlatform(config, {
    modules: enabledModules(config, [publicDataApp]),
    database: tdb.database,
    redis: null,
    work: true,
    logDestination: logs,
  });
  const app = await buildApp(config, { platform, apps: [publicDataApp] });
  await app.ready();
  const admin = await signInAdmin(app, { tdb, config });
  return {
    config,
    tdb,
    platform,
    app,
    logs,
    admin,
    async close() {
      await app.close();
      await platform.close();
      await tdb.drop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Uploads a dataset file for `owner` with purpose `public-data.dataset` through `POST /files`.
 * Bytes the files area refuses (not UTF-8, NUL: 415) are stored the way it stores a document,
 * as if their bad part lay past its read-ahead window, so the import's own checks are tested.
 */
export async function uploadDataset(
  h: PublicDataHarness,
  bytes: Buffer | string,
  options: { contentType?: string; filename?: string } = {},
): Promise<string> {
  const data = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
  const contentType = options.contentType ?? 'text/csv';
  const form = multipart([
    { name: 'purpose', data: 'public-data.dataset' },
    { name: 'file', filename: options.filename ?? 'data.csv', contentType, data },
  ]);
  const res = await h.app.inject({
    method: 'POST',
    url: '/api/v1/files',
    headers: { ...h.admin.headers, 'content-type': form.contentType },
    payload: form.body,
  });
  if (res.statusCode === 201) return res.json<{ id: string }>().id;
  // Only bytes that are not text may take the way around the upload.
  assert.ok(!isUtf8(data) || data.includes(0), `upload refused: ${res.statusCode} ${res.body}`);
  assert.equal(res.statusCode, 415, res.body);
  const id = newId();
  const key = `files/${id}/upload`;
  const stored = await h.platform.storage.put(key, data, { contentType });
  await h.tdb.database.pool.query(
    `insert into gw_file (id, owner_id, purpose, status, content_type, size, checksum_sha256,
       filename, upload_key, original_key, original_content_type, original_size, quota_bytes)
     values ($1, $2, 'public-data.dataset', 'ready', $3, $4, $5, $6, $7, $7, $3, $4, $4)`,
    [
      id,
      h.admin.user.id,
      contentType,
      stored.size,
      stored.checksumSha256 ?? '',
      options.filename ?? 'data.csv',
      key,
    ],
  );
  return id;
}

export interface VersionJson {
  id: string;
  number: number;
  status: 'queued' | 'importing' | 'ready' | 'failed' | 'retired';
  current: boolean;
  rowCount: number;
  badRowCount: number;
  badRows: { line: number; message: string }[];
  warnings: string[];
  failureCode: string | null;
  failure: string | null;
  columns: {
    name: string;
    label: string;
    type: string;
    filterable: boolean;
    sortable: boolean;
    searchable: boolean;
    hidden: boolean;
  }[];
}

/** Creates the dataset when missing. */
export async function ensureDataset(
  h: PublicDataHarness,
  slug: string,
  extra: Record<string, unknown> = {},
): Promise<void> {
  const res = await h.app.inject({
    method: 'POST',
    url: '/api/v1/public-data/datasets',
    headers: h.admin.headers,
    payload: { slug, title: `Dataset ${slug}`, ...extra },
  });
  assert.ok(res.statusCode === 201 || res.statusCode === 409, res.body);
}

/** Uploads `bytes`, imports them as a new version of `slug`, and waits for the job's outcome. */
export async function publish(
  h: PublicDataHarness,
  slug: string,
  bytes: Buffer | string,
  options: {
    format?: 'csv' | 'ndjson';
    columns?: Record<string, Record<string, unknown>>;
    timeoutMs?: number;
  } = {},
): Promise<VersionJson> {
  await ensureDataset(h, slug);
  const fileId = await uploadDataset(h, bytes, {
    contentType: options.format === 'ndjson' ? 'application/x-ndjson' : 'text/csv',
  });
  const res = await h.app.inject({
    method: 'POST',
    url: `/api/v1/public-data/datasets/${slug}/versions`,
    headers: h.admin.headers,
    payload: { fileId, format: options.format ?? 'csv', columns: options.columns ?? {} },
  });
  assert.equal(res.statusCode, 202, res.body);
  const accepted = res.json<{ version: VersionJson; jobId: string }>();
  return settledVersion(h, slug, accepted.version.number, options.timeoutMs);
}

export async function settledVersion(
  h: PublicDataHarness,
  slug: string,
  number: number,
  timeoutMs = 60_000,
): Promise<VersionJson> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const res = await h.app.inject({
      method: 'GET',
      url: `/api/v1/public-data/datasets/${slug}/versions`,
      headers: h.admin.headers,
    });
    assert.equal(res.statusCode, 200, res.body);
    const v = res.json<{ items: VersionJson[] }>().items.find((x) => x.number === number);
    assert.ok(v, `version ${number} listed`);
    if (v.status !== 'queued' && v.status !== 'importing') return v;
    if (Date.now() > until) throw new Error(`version ${number} of ${slug} still ${v.status}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** GET a public route without an account. */
export async function read(
  h: PublicDataHarness,
  url: string,
  headers: Record<string, string> = {},
) {
  return h.app.inject({ method: 'GET', url: `/api/v1/public-data${url}`, headers });
}
