// Writes the OpenAPI document (all apps enabled) to a file for client generation: npm run openapi -- [file]
// The platform is the one the server builds (every module, the job queue and mail included),
// made without opening anything, so the file is the live `/openapi.json` of APP_ENV=test.
import { writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { buildApp, enabledModules, knownModules } from '../src/app.ts';
import { allApps } from '../src/apps/index.ts';
import { loadConfig } from '../src/platform/config/index.ts';
import { createPlatform } from '../src/platform/runtime/index.ts';

const out = process.argv[2] ?? 'openapi.json';
const quiet = new Writable({ write: (_chunk, _enc, done) => done() });
const config = loadConfig({ APP_ENV: 'test', APPS: 'all' }, { modules: knownModules() });
const platform = await createPlatform(config, {
  logDestination: quiet,
  modules: enabledModules(config, allApps),
  connect: false,
});
const app = await buildApp(config, { platform, apps: allApps });
await app.ready();
writeFileSync(out, `${JSON.stringify(app.swagger(), null, 2)}\n`);
await app.close();
await platform.close();
console.log(`wrote ${out}`);
