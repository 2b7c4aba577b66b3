/**
 * Publishing tests' shared harness: the fake platforms (test/fakes/social), a configuration
 * pointing the adapters at them, the app on a test database, and `connectFakeAccount`, which
 * connects a fake platform account for a user through the real OAuth routes.
 */
import type { FastifyInstance } from 'fastify';
import { buildApp, enabledModules } from '../../src/app.ts';
import { publishingApp } from '../../src/apps/publishing/index.ts';
import type { PlatformId } from '../../src/apps/publishing/platforms/types.ts';
import { allMigrations } from '../../src/migrations/index.ts';
import type { Config } from '../../src/platform/config/index.ts';
import type { Platform } from '../../src/platform/modules/index.ts';
import { createPlatform } from '../../src/platform/runtime/index.ts';
import {
  startFakePlatforms,
  type FakePlatforms,
  type FakeSwitches,
} from '../fakes/social/server.ts';
import { LogCapture, testConfig } from './app.ts';
import { createTestDatabase, type TestDatabase } from './db.ts';
import { bearer, createUser, signIn } from './identity.ts';

export { startFakePlatforms, type FakePlatforms, type FakeSwitches };

export const PUBLISHING_PREFIX = '/api/v1/publishing';

/**
 * Settings for a test app against `fakes`: every platform enabled, short time limits so that the
 * fakes' hangs end quickly, container polls without waiting.
 */
export function publishingTestOverrides(
  fakes: FakePlatforms,
  overrides: Record<string, string> = {},
): Record<string, string> {
  const { FAKE_PLATFORMS_URL: _url, ...env } = fakes.env;
  return {
    PUBLIC_URL: 'https://app.example.test',
    PUBLISHING_HTTP_TIMEOUT_MS: '1500',
    PUBLISHING_UPLOAD_TIMEOUT_MS: '3000',
    PUBLISHING_CONTAINER_POLL_MS: '10',
    ...env,
    ...overrides,
  };
}

/** The validated configuration of a publishing test app against `fakes`. */
export function publishingTestConfig(
  fakes: FakePlatforms,
  overrides: Record<string, string> = {},
): Config {
  return testConfig(publishingTestOverrides(fakes, overrides), [publishingApp]);
}

export interface PublishingHarness {
  fakes: FakePlatforms;
  config: Config;
  tdb: TestDatabase;
  platform: Platform;
  app: FastifyInstance;
  logs: LogCapture;
  /** A new signed-in user: its id and bearer headers. */
  user(): Promise<{ id: string; email: string; token: string; headers: Record<string, string> }>;
  close(): Promise<void>;
}

/**
 * The fakes, a test database with every migration, the platform (workers on when `work`) and the
 * app with the publishing module. Close it in `after`.
 */
export async function startPublishingHarness(
  options: { overrides?: Record<string, string>; work?: boolean; fakes?: FakePlatforms } = {},
): Promise<PublishingHarness> {
  const fakes = options.fakes ?? (await startFakePlatforms());
  try {
    return await build(fakes, options);
  } catch (error) {
    if (!options.fakes) await fakes.close();
    throw error;
  }
}

async function build(
  fakes: FakePlatforms,
  options: { overrides?: Record<string, string>; work?: boolean; fakes?: FakePlatforms },
): Promise<PublishingHarness> {
  const config = publishingTestConfig(fakes, {
    JOBS_POLL_INTERVAL_MS: '500',
    JOBS_SUPERVISE_INTERVAL_S: '1',
    ...options.overrides,
  });
  const tdb = await createTestDatabase({ config, migrations: allMigrations([publishingApp]) });
  const logs = new LogCapture();
  const platform = await createPlatform(config, {
    modules: enabledModules(config, [publishingApp]),
    database: tdb.database,
    redis: null,
    work: options.work ?? false,
    logDestination: logs,
    mailRetry: { retries: 1, initialSeconds: 1, maxSeconds: 1 },
  });
  const app = await buildApp(config, { platform, apps: [publishingApp] });
  await app.ready();
  const h = { tdb, config };
  return {
    fakes,
    config,
    tdb,
    platform,
    app,
    logs,
    async user() {
      const user = await createUser(h);
      const token = (await signIn(app, user)).accessToken;
      return { id: user.id, email: user.email, token, headers: bearer(token) };
    },
    async close() {
      await app.close();
      await platform.close();
      await tdb.drop();
      if (!options.fakes) await fakes.close();
    },
  };
}

/** A connected account as the API answers it. */
export interface ConnectedAccount {
  id: string;
  platform: PlatformId;
  externalId: string;
  name: string;
  username: string | null;
  avatarUrl: string | null;
  status: 'active' | 'reauth_required' | 'disconnected';
  statusReason: string | null;
  scopes: string[];
  tokenExpiresAt: string | null;
  createdAt: string;
  updatedAt: string;
}

let fakeAccounts = 0;

/**
 * Connects a fake platform account for the user of `userToken` through the real routes: `GET
 * /accounts/connect/:platform` (302 to the fake's consent), the fake's consent (approved, 302 back
 * with code and state), `GET /accounts/callback/:platform`. `fakeUser` picks the account on the
 * fake platform (the same one again reconnects it); a new one by default.
 */
export async function connectFakeAccount(
  app: FastifyInstance,
  userToken: string,
  platform: PlatformId,
  options: { fakeUser?: string } = {},
): Promise<ConnectedAccount> {
  const callback = await fakeConsent(app, userToken, platform, options);
  const res = await app.inject({ method: 'GET', url: callback });
  if (res.statusCode !== 200)
    throw new Error(`OAuth callback failed: ${res.statusCode} ${res.body}`);
  const account = res.json<{ accounts: ConnectedAccount[] }>().accounts[0];
  if (!account) throw new Error(`OAuth callback stored no account: ${res.body}`);
  return account;
}

/**
 * The first two legs of a connect: the app's redirect to consent and the fake's redirect back.
 * Answers the callback's path and query (for `app.inject`), without calling it.
 */
export async function fakeConsent(
  app: FastifyInstance,
  userToken: string,
  platform: PlatformId,
  options: { fakeUser?: string; consentUrl?: string } = {},
): Promise<string> {
  let consent = options.consentUrl;
  if (consent === undefined) {
    const start = await app.inject({
      method: 'GET',
      url: `${PUBLISHING_PREFIX}/accounts/connect/${platform}`,
      headers: bearer(userToken),
    });
    if (start.statusCode !== 302)
      throw new Error(`connect did not redirect: ${start.statusCode} ${start.body}`);
    consent = String(start.headers.location);
  }
  const url = new URL(consent);
  fakeAccounts += 1;
  url.searchParams.set('fake_account', options.fakeUser ?? `acct${process.pid}x${fakeAccounts}`);
  const back = await fetch(url, { redirect: 'manual' });
  const location = back.headers.get('location');
  if (back.status !== 302 || !location)
    throw new Error(`the fake consent did not redirect: ${back.status}`);
  const callback = new URL(location);
  return `${callback.pathname}${callback.search}`;
}
