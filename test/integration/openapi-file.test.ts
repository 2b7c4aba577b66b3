import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { buildApp, enabledModules, knownModules } from '../../src/app.ts';
import { allApps } from '../../src/apps/index.ts';
import { loadConfig } from '../../src/platform/config/index.ts';
import { createPlatform } from '../../src/platform/runtime/index.ts';
import { LogCapture } from '../helpers/app.ts';
import { createTestDatabase } from '../helpers/db.ts';

const run = promisify(execFile);

describe('npm run openapi', () => {
  test('writes exactly the live /openapi.json of a server built as main.ts builds it (regression: the file missed /api/v1/jobs/{id} and the admin queue routes)', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-openapi-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'openapi.json');
    await run(process.execPath, ['scripts/openapi.ts', file], { cwd: process.cwd() });
    const written = JSON.parse(readFileSync(file, 'utf8')) as { paths: Record<string, unknown> };

    // The live server: the same settings as the script, its platform open on a real database.
    const config = loadConfig({ APP_ENV: 'test', APPS: 'all' }, { modules: knownModules() });
    const tdb = await createTestDatabase({ config });
    t.after(() => tdb.drop());
    const platform = await createPlatform(config, {
      logDestination: new LogCapture(),
      modules: enabledModules(config, allApps),
      database: tdb.database,
    });
    t.after(() => platform.close());
    const app = await buildApp(config, { platform, apps: allApps });
    t.after(() => app.close());
    const live = await app.inject({ method: 'GET', url: '/openapi.json' });
    assert.equal(live.statusCode, 200);

    assert.ok(written.paths['/api/v1/jobs/{id}'], 'the job status route is in the file');
    assert.ok(written.paths['/api/v1/admin/queues'], 'the admin queue routes are in the file');
    assert.ok(
      written.paths['/api/v1/admin/permissions'],
      'the permission catalogue is in the file',
    );
    assert.deepEqual(written, live.json());
  });
});
