// Preflight of `npm start`, `npm test` and `npm run build`: on a Node older than `engines.node`
// (">=X[.Y[.Z]]"), one line naming the version needed and exit 1, instead of a stack trace from
// the TypeScript sources or an unknown test-runner flag. Plain JavaScript with nothing newer than
// ES2017: it must load on the very Node versions it turns away (checked with Node 20).
import { readFileSync } from 'node:fs';

const parse = (version) => {
  const parts = String(version).replace(/^v/, '').split('.');
  return [0, 1, 2].map((i) => Number(parts[i]) || 0);
};

const atLeast = (have, need) => {
  for (let i = 0; i < 3; i++) if (have[i] !== need[i]) return have[i] > need[i];
  return true;
};

const range = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).engines
  .node;
const match = /^>=\s*(\d+(?:\.\d+){0,2})$/.exec(String(range).trim());
if (!match) {
  process.stderr.write(
    `scripts/node-check.js: engines.node must read ">=X[.Y[.Z]]", not "${range}"\n`,
  );
  process.exit(1);
}
const need = match[1];
const have = process.versions.node;
if (!atLeast(parse(have), parse(need))) {
  process.stderr.write(
    `groundwork needs Node.js ${need} or newer (this is ${have}): install Node ${need.split('.')[0]} (with nvm: \`nvm install\`, which reads .nvmrc) and run the command again\n`,
  );
  process.exit(1);
}
