/**
 * The Node version preflight (`scripts/node-check.js`, run first by `npm start`, `npm test` and
 * `npm run build`): on a Node older than `engines.node`, one line naming the version needed and
 * exit 1, no stack trace. Checked with a copy of the script under a package.json that asks for a
 * Node that does not exist yet, and, where the machine has an older Node (Debian's, at
 * /usr/bin/node), with the real npm scripts run by it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const SYSTEM_NODE = '/usr/bin/node';
const TIMEOUT_MS = 60_000;

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  engines: { node: string };
  scripts: Record<string, string>;
};
const needed = /^>=(\d+)/.exec(pkg.engines.node)?.[1] ?? '';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], options: { cwd: string; path?: string }) {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  if (options.path !== undefined) env.PATH = options.path;
  return new Promise<Run>((resolve) => {
    execFile(
      command,
      args,
      { cwd: options.cwd, env, timeout: TIMEOUT_MS, killSignal: 'SIGKILL' },
      (error, stdout, stderr) =>
        resolve({
          code: error ? (typeof error.code === 'number' ? error.code : null) : 0,
          stdout,
          stderr,
        }),
    );
  });
}

function assertOneLine(res: Run, need: string, have: string): void {
  assert.equal(res.code, 1, `${res.stdout}\n${res.stderr}`);
  const lines = res.stderr.split('\n').filter((l) => l.trim() !== '');
  assert.equal(lines.length, 1, `one line on stderr, got:\n${res.stderr}`);
  assert.equal(
    lines[0],
    `groundwork needs Node.js ${need} or newer (this is ${have}): install Node ${need.split('.')[0]} (with nvm: \`nvm install\`, which reads .nvmrc) and run the command again`,
  );
  assert.doesNotMatch(res.stderr + res.stdout, /^\s+at /m, 'no stack trace');
}

/** The version `node` at `path` reports, without the leading "v". */
async function versionOf(path: string): Promise<string> {
  const res = await run(path, ['--version'], { cwd: root });
  return res.stdout.trim().replace(/^v/, '');
}

describe('Node version preflight (scripts/node-check.js)', () => {
  test('engines.node is ">=N", .nvmrc names the same major, and the scripts run the check first', () => {
    assert.match(pkg.engines.node, /^>=\d+$/);
    assert.equal(readFileSync(join(root, '.nvmrc'), 'utf8').trim(), needed);
    for (const name of ['start', 'test', 'build', 'serve', 'worker', 'migrate'])
      assert.ok(pkg.scripts[name]?.startsWith('node scripts/node-check.js && '), name);
  });

  test('on this Node it passes silently', async () => {
    const res = await run(process.execPath, ['scripts/node-check.js'], { cwd: root });
    assert.deepEqual(res, { code: 0, stdout: '', stderr: '' });
  });

  test('a Node older than engines.node: one line naming the version needed, exit 1', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-node-check-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    mkdirSync(join(dir, 'scripts'));
    copyFileSync(join(root, 'scripts/node-check.js'), join(dir, 'scripts/node-check.js'));
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({ type: 'module', engines: { node: '>=999.1' } }),
    );
    const res = await run(process.execPath, ['scripts/node-check.js'], { cwd: dir });
    assertOneLine(res, '999.1', process.versions.node);
  });

  test(
    'npm start, npm test and npm run build on the machine’s older Node: one line, exit 1',
    { timeout: TIMEOUT_MS * 3 },
    async (t) => {
      if (!existsSync(SYSTEM_NODE)) return t.skip(`no ${SYSTEM_NODE} on this machine`);
      const have = await versionOf(SYSTEM_NODE);
      if (Number(have.split('.')[0]) >= Number(needed))
        return t.skip(`${SYSTEM_NODE} is ${have}, not older than ${needed}`);
      // The old Node first on PATH, as on a machine where it is the only one; npm from the same place.
      const path = `${dirname(SYSTEM_NODE)}:${process.env.PATH ?? ''}`;
      for (const script of [['start'], ['test'], ['run', 'build']]) {
        const res = await run('npm', [...script, '--silent'], { cwd: root, path });
        assertOneLine(res, needed, have);
      }
    },
  );
});
