import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';

// The hosted-CI files cannot run here: their shape is what is checked. The workflow calls the same
// .ci/run as the project's CI, and pushes an image only from main after the tests passed; the
// update bot covers every ecosystem the repository has.
const root = resolve(import.meta.dirname, '../..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  if?: string;
  with?: Record<string, unknown>;
}
interface Job {
  needs?: string | string[];
  if?: string;
  permissions?: Record<string, string>;
  steps: Step[];
  container?: unknown;
}
interface Workflow {
  on: Record<string, unknown>;
  permissions: Record<string, string>;
  concurrency: { group: string; 'cancel-in-progress': unknown };
  jobs: Record<string, Job>;
}

const workflow = parse(read('.github/workflows/ci.yml'), { strict: true }) as Workflow;
const needsOf = (job: Job) => (Array.isArray(job.needs) ? job.needs : job.needs ? [job.needs] : []);
const ON_MAIN = /github\.ref == 'refs\/heads\/main'/;

test('the workflow runs .ci/run on pushes to main and on pull requests', () => {
  assert.ok('push' in workflow.on && 'pull_request' in workflow.on);
  assert.deepEqual((workflow.on.push as { branches: string[] }).branches, ['main']);
  const runs = Object.entries(workflow.jobs).filter(([, job]) =>
    job.steps.some((s) => /^bash \.ci\/run$/m.test(s.run ?? '')),
  );
  assert.equal(runs.length, 1, 'exactly one job calls bash .ci/run');
  assert.ok(existsSync(join(root, '.ci/run')));
});

test('least privilege: the workflow reads only; write access is given to the image job alone', () => {
  assert.deepEqual(workflow.permissions, { contents: 'read' });
  for (const [name, job] of Object.entries(workflow.jobs)) {
    const writes = Object.entries(job.permissions ?? {}).filter(([, v]) => v === 'write');
    if (name === 'image') assert.deepEqual(writes, [['packages', 'write']]);
    else assert.deepEqual(writes, [], `${name} writes nothing`);
  }
  for (const job of Object.values(workflow.jobs)) {
    for (const step of job.steps.filter((s) => s.uses?.startsWith('actions/checkout@'))) {
      assert.equal(step.with?.['persist-credentials'], false, 'checkout keeps no token');
    }
  }
});

test('one run per ref: concurrency groups by ref and cancels superseded runs off main', () => {
  assert.match(workflow.concurrency.group, /github\.ref/);
  assert.match(
    String(workflow.concurrency['cancel-in-progress']),
    /github\.ref != 'refs\/heads\/main'/,
  );
});

test('the image is built with build-push-action after the tests and pushed only on main', () => {
  const testJob = Object.entries(workflow.jobs).find(([, job]) =>
    job.steps.some((s) => /^bash \.ci\/run$/m.test(s.run ?? '')),
  )?.[0];
  assert.ok(testJob);
  const pushing = Object.entries(workflow.jobs).flatMap(([name, job]) =>
    job.steps
      .filter((s) => s.uses?.startsWith('docker/build-push-action@'))
      .map((step) => ({ name, job, step })),
  );
  assert.equal(pushing.length, 1);
  const [{ job, step }] = pushing as [(typeof pushing)[number]];
  assert.ok(needsOf(job).includes(testJob), 'the image job needs the test job (green first)');
  const push = String(step.with?.push);
  assert.match(push, ON_MAIN, 'push only on main');
  assert.match(push, /github\.event_name == 'push'/, 'and only for a push (not a pull request)');
  const login = job.steps.find((s) => s.uses?.startsWith('docker/login-action@'));
  assert.ok(login?.if && ON_MAIN.test(login.if), 'the registry login happens on main only');
});

test('every action is pinned to a version', () => {
  for (const job of Object.values(workflow.jobs)) {
    for (const step of job.steps) {
      if (step.uses) assert.match(step.uses, /^[\w.-]+\/[\w.-]+@(v\d+|[0-9a-f]{40})$/, step.uses);
    }
  }
});

interface Update {
  'package-ecosystem': string;
  directory: string;
  groups?: Record<string, { 'update-types'?: string[] }>;
}

test('dependabot covers npm, GitHub Actions, the Dockerfile and the compose files, minor and patch grouped', () => {
  const config = parse(read('.github/dependabot.yml'), { strict: true }) as {
    version: number;
    updates: Update[];
  };
  assert.equal(config.version, 2);
  const byEcosystem = new Map(config.updates.map((u) => [u['package-ecosystem'], u]));
  const needed: [string, string, boolean][] = [
    ['npm', '/', existsSync(join(root, 'package-lock.json'))],
    ['github-actions', '/', existsSync(join(root, '.github/workflows'))],
    ['docker', '/', existsSync(join(root, 'Dockerfile'))],
    [
      'docker-compose',
      '/deploy',
      readdirSync(join(root, 'deploy')).some((f) => /^compose.*\.ya?ml$/.test(f)),
    ],
  ];
  for (const [ecosystem, directory, present] of needed) {
    assert.ok(present, `${ecosystem}: the repository has its files`);
    const update = byEcosystem.get(ecosystem);
    assert.ok(update, `${ecosystem} is covered`);
    assert.equal(update.directory, directory);
    const grouped = Object.values(update.groups ?? {}).some(
      (g) => g['update-types']?.includes('minor') && g['update-types'].includes('patch'),
    );
    assert.ok(grouped, `${ecosystem}: minor and patch updates are grouped`);
  }
});
