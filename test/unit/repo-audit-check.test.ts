import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import {
  advisories,
  describe as describeVerdict,
  evaluate,
  isReport,
  parseAllowlist,
  type AllowEntry,
} from '../../scripts/audit-check.ts';

// Reports in npm 11's `npm audit --json` shape (auditReportVersion 2): findings.json holds a
// critical (form-data), a high reached through a dependency (semver under make-fetch-happen) and a
// moderate (nanoid); npm-audit-405.json is what this machine's registry mirror answered (it has no
// audit endpoint).
const root = resolve(import.meta.dirname, '../..');
const fixture = (name: string): unknown =>
  JSON.parse(readFileSync(join(root, 'test/fixtures/audit', name), 'utf8')) as unknown;
const TODAY = '2026-12-07';
const entry = (over: Partial<AllowEntry> = {}): AllowEntry => ({
  id: 'GHSA-c2qf-rxjj-qqgw',
  package: 'semver',
  reason: 'only parses our own version ranges',
  expires: '2027-03-01',
  ...over,
});

function findings() {
  const report = fixture('npm-audit-findings.json');
  assert.ok(isReport(report));
  return advisories(report);
}

test('advisories: one per advisory object in via; package names in via are not advisories', () => {
  const found = findings();
  assert.deepEqual(
    found.map((a) => [a.package, a.id, a.severity]),
    [
      ['form-data', 'GHSA-fjxv-7rqg-78g4', 'critical'],
      ['nanoid', 'GHSA-mwcw-c2x4-8c55', 'moderate'],
      ['semver', 'GHSA-c2qf-rxjj-qqgw', 'high'],
    ],
  );
});

test('high and critical findings fail; moderate ones are counted, never failing', () => {
  const verdict = evaluate(findings(), []);
  assert.deepEqual(
    verdict.blocking.map((a) => a.package),
    ['form-data', 'semver'],
  );
  assert.deepEqual(verdict.lower, { moderate: 1 });
  const { ok, lines } = describeVerdict(verdict);
  assert.equal(ok, false);
  assert.match(lines.at(-1) ?? '', /2 high\/critical not accepted.*FAILED/);
});

test('an allowlist entry accepts its advisory for its package only (by GHSA or numeric id)', () => {
  const byGhsa = evaluate(findings(), [entry()]);
  assert.deepEqual(
    byGhsa.blocking.map((a) => a.package),
    ['form-data'],
  );
  assert.equal(byGhsa.allowed[0]?.advisory.package, 'semver');

  const byNumber = evaluate(findings(), [entry({ id: '1101088' })]);
  assert.deepEqual(
    byNumber.blocking.map((a) => a.package),
    ['form-data'],
  );

  const otherPackage = evaluate(findings(), [entry({ package: 'make-fetch-happen' })]);
  assert.deepEqual(
    otherPackage.blocking.map((a) => a.package),
    ['form-data', 'semver'],
  );
  assert.equal(otherPackage.unused.length, 1, 'an entry that matches nothing is reported');

  const all = evaluate(findings(), [
    entry(),
    entry({ id: 'GHSA-fjxv-7rqg-78g4', package: 'form-data' }),
  ]);
  assert.equal(describeVerdict(all).ok, true);
});

test('an expired entry fails the check, and accepts nothing', () => {
  const { entries, problems } = parseAllowlist(
    { advisories: [entry({ expires: '2026-12-06' })] },
    TODAY,
  );
  assert.deepEqual(entries, []);
  assert.equal(problems.length, 1);
  assert.match(problems[0] ?? '', /expired on 2026-12-06/);
  const verdict = evaluate(findings(), entries, problems);
  assert.deepEqual(
    verdict.blocking.map((a) => a.package),
    ['form-data', 'semver'],
  );
  assert.equal(describeVerdict(verdict).ok, false);
  // The last day itself still counts.
  assert.deepEqual(parseAllowlist({ advisories: [entry({ expires: TODAY })] }, TODAY).problems, []);
});

test('an expired entry fails even with a clean report', () => {
  const { entries, problems } = parseAllowlist(
    { advisories: [entry({ expires: '2026-01-01' })] },
    TODAY,
  );
  const clean = fixture('npm-audit-clean.json');
  assert.ok(isReport(clean));
  assert.equal(describeVerdict(evaluate(advisories(clean), entries, problems)).ok, false);
});

test('invalid allowlist entries are problems: missing fields, a bad date, more than a year away', () => {
  const { entries, problems } = parseAllowlist(
    {
      advisories: [
        { id: 'GHSA-c2qf-rxjj-qqgw', package: 'semver', expires: '2027-01-01' },
        entry({ reason: '  ' }),
        entry({ expires: '2027-13-45' }),
        entry({ expires: 'next year' }),
        entry({ expires: '2028-06-01' }),
        null,
      ],
    },
    TODAY,
  );
  assert.deepEqual(entries, []);
  assert.equal(problems.length, 6);
  assert.match(problems[0] ?? '', /reason missing/);
  assert.match(problems[1] ?? '', /reason missing/);
  assert.match(problems[2] ?? '', /YYYY-MM-DD/);
  assert.match(problems[3] ?? '', /YYYY-MM-DD/);
  assert.match(problems[4] ?? '', /a year at most/);
  assert.match(problems[5] ?? '', /id, package, reason, expires missing/);
  assert.deepEqual(parseAllowlist({ nope: [] }, TODAY).problems.length, 1);
});

test('the registry error (no audit endpoint) is not a report', () => {
  assert.equal(isReport(fixture('npm-audit-405.json')), false);
});

test("the repository's own allowlist is valid", () => {
  const { problems } = parseAllowlist(
    JSON.parse(readFileSync(join(root, 'audit-allowlist.json'), 'utf8')) as unknown,
    new Date().toISOString().slice(0, 10),
  );
  assert.deepEqual(problems, []);
});

test('the command: a saved report with findings exits 1; not run exits 0, or 1 with AUDIT_REQUIRED=1', async () => {
  const run = promisify(execFile);
  const script = join(root, 'scripts/audit-check.ts');
  const code = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
    try {
      const { stdout } = await run(process.execPath, [script, ...args], {
        cwd: root,
        env: { ...process.env, AUDIT_REQUIRED: '', ...env },
      });
      return { code: 0, stdout };
    } catch (error) {
      const e = error as { code: number; stdout: string };
      return { code: e.code, stdout: e.stdout };
    }
  };
  const fixtures = join(root, 'test/fixtures/audit');
  const failing = await code(['--report', join(fixtures, 'npm-audit-findings.json')]);
  assert.equal(failing.code, 1);
  assert.match(failing.stdout, /✖ critical form-data/);
  assert.equal((await code(['--report', join(fixtures, 'npm-audit-clean.json')])).code, 0);
  const notRun = await code(['--report', join(fixtures, 'npm-audit-405.json')]);
  assert.equal(notRun.code, 0);
  assert.match(notRun.stdout, /audit: NOT RUN \(405 Method Not Allowed/);
  const required = await code(['--report', join(fixtures, 'npm-audit-405.json')], {
    AUDIT_REQUIRED: '1',
  });
  assert.equal(required.code, 1);
  const garbage = join(mkdtempSync(join(tmpdir(), 'gw-audit-')), 'report.json');
  writeFileSync(garbage, 'npm ERR! not json');
  assert.equal((await code(['--report', garbage], { AUDIT_REQUIRED: '1' })).code, 1);
});
