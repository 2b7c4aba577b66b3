// Regenerates docs/configuration.md, .env.example and docs/errors.md from their sources of truth.
import { writeFileSync } from 'node:fs';
import { knownModules } from '../src/app.ts';
import { renderConfigDocs, renderEnvExample } from '../src/platform/config/index.ts';
import { renderErrorDocs } from './lib/error-docs.ts';

const root = new URL('../', import.meta.url);
writeFileSync(new URL('docs/configuration.md', root), renderConfigDocs(knownModules()));
writeFileSync(new URL('.env.example', root), renderEnvExample(knownModules()));
writeFileSync(new URL('docs/errors.md', root), await renderErrorDocs());
console.log('wrote docs/configuration.md, .env.example, docs/errors.md');
