/**
 * End-to-end: the example frontend (examples/frontend) built by the root's Vite with the API's
 * origin in `VITE_API_BASE_URL`, served on one origin, the API on another (CORS_ORIGINS lists the
 * first), driven by Debian's Chromium through playwright-core. Data appears, filters, facets and
 * pages work through the generated client, CORS holds; the same build served from an origin not on
 * the list gets nothing (the browser blocks the answers) and says so.
 *
 * Needs Chromium at CHROMIUM_PATH (default /usr/bin/chromium: `apt-get install -y chromium`).
 * The API is the public-data app (test/helpers/public-data.ts) with two datasets imported.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium, type Browser, type Page } from 'playwright-core';
import { seedDatasets } from '../fixtures/frontend/datasets.ts';
import { startPublicData, type PublicDataHarness } from '../helpers/public-data.ts';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const TIMEOUT_MS = 20_000;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** A static server for the build (the frontend's host: Vercel, a CDN, nginx...). */
async function serveStatic(dir: string): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const file = normalize(join(dir, path === '/' ? 'index.html' : path));
    if (!file.startsWith(dir) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
    res.end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, origin: `http://127.0.0.1:${String(port)}` };
}

const close = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()));

// Like the Redis-backed tests: skipped (with the reason) on a machine without Chromium, except
// where it is required (CI installs it and sets REQUIRE_CHROMIUM=1, so a failed install fails).
const noChromium =
  existsSync(CHROMIUM) || process.env.REQUIRE_CHROMIUM === '1'
    ? false
    : `no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`;

describe(
  'example frontend in Chromium against the API on another origin',
  { skip: noChromium },
  () => {
    let dir: string;
    let allowed: { server: Server; origin: string };
    let blocked: { server: Server; origin: string };
    let h: PublicDataHarness;
    let api: string;
    let browser: Browser;

    before(async () => {
      assert.ok(
        existsSync(CHROMIUM),
        `no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`,
      );
      dir = mkdtempSync(join(tmpdir(), 'gw-frontend-'));
      // Two hosts of the same build; the API allows only the first.
      allowed = await serveStatic(dir);
      blocked = await serveStatic(dir);
      h = await startPublicData({ CORS_ORIGINS: allowed.origin });
      await seedDatasets(h);
      await h.app.listen({ host: '127.0.0.1', port: 0 });
      api = `http://127.0.0.1:${String((h.app.server.address() as AddressInfo).port)}`;
      // The build CI runs (`npx vite build examples/frontend`), with this run's API origin.
      await run(
        process.execPath,
        [
          'node_modules/vite/bin/vite.js',
          'build',
          'examples/frontend',
          '--outDir',
          dir,
          '--emptyOutDir',
          '--logLevel',
          'warn',
        ],
        { cwd: root, env: { ...process.env, VITE_API_BASE_URL: api } },
      );
      browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
    });

    after(async () => {
      await browser?.close();
      await h?.close();
      if (allowed) await close(allowed.server);
      if (blocked) await close(blocked.server);
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    /** A fresh page at `origin`, failing the test on any uncaught page error. */
    async function open(
      origin: string,
    ): Promise<{ page: Page; errors: string[]; failedUrls: string[] }> {
      const page = await browser.newPage();
      page.setDefaultTimeout(TIMEOUT_MS);
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      // Recorded from before the navigation: the page's first API calls can fail before `goto`
      // resolves (a listener added after it missed them on a fast run).
      const failedUrls: string[] = [];
      page.on('requestfailed', (r) => failedUrls.push(r.url()));
      await page.goto(`${origin}/`);
      return { page, errors, failedUrls };
    }

    /** Polls `check` until it holds (the page renders asynchronously), or fails with its last value. */
    async function until<T>(read: () => Promise<T>, check: (value: T) => boolean): Promise<T> {
      const deadline = Date.now() + TIMEOUT_MS;
      for (;;) {
        const value = await read();
        if (check(value)) return value;
        if (Date.now() > deadline) assert.fail(`still ${JSON.stringify(value)}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }

    const column = (page: Page, n: number) =>
      page.locator(`[data-testid=rows] tr td:nth-child(${String(n)})`).allTextContents();

    test('the frontend typechecks against the generated client (it cannot drift from the API)', async () => {
      await run(
        process.execPath,
        ['node_modules/typescript/bin/tsc', '--noEmit', '-p', 'examples/frontend'],
        {
          cwd: root,
        },
      );
    });

    test('datasets and rows appear; the API answers carry CORS for this origin', async () => {
      const page = await browser.newPage();
      page.setDefaultTimeout(TIMEOUT_MS);
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      const answered = page.waitForResponse((r) =>
        r.url().startsWith(`${api}/api/v1/public-data/`),
      );
      await page.goto(`${allowed.origin}/`);
      const list = page.locator('[data-testid=datasets] button');
      await list.first().waitFor();
      assert.deepEqual((await list.allTextContents()).sort(), [
        'Air quality measurements',
        'Public libraries',
      ]);
      const response = await answered;
      assert.equal(response.status(), 200);
      assert.equal(response.headers()['access-control-allow-origin'], allowed.origin);

      await page.locator('[data-testid=datasets] button[data-slug=air-quality]').click();
      await page.locator('[data-testid=rows] tr').nth(19).waitFor();
      assert.equal(await page.locator('[data-testid=rows] tr').count(), 20);
      assert.equal(
        await page.locator('[data-testid=dataset-title]').textContent(),
        'Air quality measurements',
      );
      assert.deepEqual((await column(page, 1)).slice(0, 3), ['1', '2', '3']);
      assert.deepEqual(errors, []);
      await page.close();
    });

    test('facets, filters and keyset pages through the client', async () => {
      const { page, errors } = await open(allowed.origin);
      await page.locator('[data-testid=datasets] button[data-slug=air-quality]').click();
      await page.locator('[data-testid=rows] tr').nth(19).waitFor();

      // Pages: Next follows the cursor, Previous goes back.
      await page.locator('[data-testid=next]').click();
      await page.locator('[data-testid=page-info]', { hasText: 'Page 2' }).waitFor();
      await until(
        () => column(page, 1),
        (ids) => ids[0] === '21' && ids.length === 20,
      );
      await page.locator('[data-testid=prev]').click();
      await until(
        () => column(page, 1),
        (ids) => ids[0] === '1',
      );

      // A facet value (city: 24 rows each) becomes a filter: every row shown is of that city.
      const lyon = page.locator('[data-facet=city] button', { hasText: 'Lyon (24)' });
      await lyon.click();
      await page.locator('[data-testid=filters] li', { hasText: 'city eq Lyon' }).waitFor();
      await until(
        () => column(page, 2),
        (cities) => cities.length === 20 && cities.every((c) => c === 'Lyon'),
      );
      // The facet counts follow the filters.
      await page.locator('[data-facet=city] button', { hasText: 'Lyon (24)' }).waitFor();
      assert.equal(await page.locator('[data-facet=city] button').count(), 1);

      // A typed filter from the form: value ≥ 50.
      await page.selectOption('[data-testid=filter-form] select[name=column]', 'value');
      await page.selectOption('[data-testid=filter-form] select[name=op]', 'gte');
      await page.fill('[data-testid=filter-form] input[name=value]', '50');
      await page.click('[data-testid=filter-form] button[type=submit]');
      await page.locator('[data-testid=filters] li', { hasText: 'value gte 50' }).waitFor();
      await until(
        () => column(page, 4),
        (values) => values.length > 0 && values.every((v) => Number(v) >= 50),
      );
      const cities = await column(page, 2);
      assert.ok(
        cities.every((c) => c === 'Lyon'),
        cities.join(),
      );
      assert.deepEqual(errors, []);
      await page.close();
    });

    test('a bad filter value shows the typed problem (INVALID_FILTER) naming the column', async () => {
      const { page } = await open(allowed.origin);
      await page.locator('[data-testid=datasets] button[data-slug=air-quality]').click();
      await page.locator('[data-testid=rows] tr').first().waitFor();
      await page.selectOption('[data-testid=filter-form] select[name=column]', 'value');
      await page.fill('[data-testid=filter-form] input[name=value]', 'lots');
      await page.click('[data-testid=filter-form] button[type=submit]');
      const status = page.locator('[data-testid=status][data-error-code=INVALID_FILTER]');
      await status.waitFor();
      assert.match(
        (await status.textContent()) ?? '',
        /^INVALID_FILTER: .*value.* \(request [0-9a-f-]{36}\)$/,
      );
      await page.close();
    });

    test('the same build on an origin not on CORS_ORIGINS gets nothing: the browser blocks the answers', async () => {
      const { page, failedUrls } = await open(blocked.origin);
      const status = page.locator('[data-testid=status][data-error-code=NETWORK]');
      await status.waitFor();
      assert.match((await status.textContent()) ?? '', /not one of the origins the API allows/);
      assert.equal(await page.locator('[data-testid=datasets] li').count(), 0);
      // The browser failed the API request itself (CORS), not the page.
      await until(
        () => Promise.resolve(failedUrls.filter((url) => url.startsWith(api))),
        (urls) => urls.length > 0,
      );
      await page.close();
    });

    test('CORS from the server: the listed origin is granted (preflight cached), another is not', async () => {
      const preflight = (origin: string) =>
        fetch(`${api}/api/v1/public-data/datasets`, {
          method: 'OPTIONS',
          headers: {
            origin,
            'access-control-request-method': 'GET',
            'access-control-request-headers': 'if-none-match',
          },
        });
      const yes = await preflight(allowed.origin);
      assert.equal(yes.headers.get('access-control-allow-origin'), allowed.origin);
      assert.equal(yes.headers.get('access-control-max-age'), '600');
      assert.match(yes.headers.get('vary') ?? '', /origin/i);
      const no = await preflight(blocked.origin);
      assert.equal(no.headers.get('access-control-allow-origin'), null);
      const simple = await fetch(`${api}/api/v1/public-data/datasets`, {
        headers: { origin: blocked.origin },
      });
      assert.equal(simple.headers.get('access-control-allow-origin'), null);
    });
  },
);
