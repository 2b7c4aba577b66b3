// Writes the OpenAPI document (all apps enabled) to a file for client generation: npm run openapi -- [file]
import { writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/platform/config/index.ts';

const out = process.argv[2] ?? 'openapi.json';
const quiet = new Writable({ write: (_chunk, _enc, done) => done() });
const app = await buildApp(loadConfig({ APP_ENV: 'test', APPS: 'all' }), { logDestination: quiet });
await app.ready();
writeFileSync(out, `${JSON.stringify(app.swagger(), null, 2)}\n`);
await app.close();
console.log(`wrote ${out}`);
