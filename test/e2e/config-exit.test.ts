import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));

function run(args: string[], env: Record<string, string>) {
  return spawnSync(process.execPath, ['src/main.ts', ...args], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    encoding: 'utf8',
    timeout: 20_000,
  });
}

describe('process exit codes', () => {
  test('APPS naming an unknown app exits 78 naming it', () => {
    const res = run(['serve'], { APP_ENV: 'test', APPS: 'nope', PORT: '0', HOST: '127.0.0.1' });
    assert.equal(res.status, 78, res.stderr);
    assert.match(res.stderr, /APPS: unknown apps: nope/);
  });

  test('an unknown command exits 64 with usage', () => {
    const res = run(['dance'], { APP_ENV: 'test' });
    assert.equal(res.status, 64);
    assert.match(res.stderr, /usage: main \[serve\|worker\|migrate\|all\|db\|users\|audit\]/);
  });
});
