/**
 * The Prometheus artefacts (deploy/prometheus): every alert is well formed and has a runbook
 * anchor, fires in a promtool unit test and stays quiet in another; promtool checks the rules and
 * the scrape config and runs the tests (deploy/prometheus/tests). promtool comes with Debian's
 * `prometheus` package; without it those tests are skipped with the reason, unless
 * REQUIRE_PROMTOOL=1 (CI installs it and sets it, so a failed install fails).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import {
  alertRules,
  dashboardQueries,
  PROMETHEUS_DIR,
  promqlMetricNames,
  recordingRules,
  ROOT,
} from '../helpers/metric-names.ts';

const run = promisify(execFile);

/** promtool at PROMTOOL_PATH, or on the PATH. */
function findPromtool(): string | null {
  if (process.env.PROMTOOL_PATH) return process.env.PROMTOOL_PATH;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, 'promtool');
    if (dir && existsSync(candidate)) return candidate;
  }
  return existsSync('/usr/bin/promtool') ? '/usr/bin/promtool' : null;
}
const PROMTOOL = findPromtool();
const noPromtool =
  PROMTOOL !== null || process.env.REQUIRE_PROMTOOL === '1'
    ? false
    : 'no promtool: apt-get install -y prometheus (or set PROMTOOL_PATH)';

async function promtool(
  args: string[],
  cwd = PROMETHEUS_DIR,
): Promise<{ code: number; out: string }> {
  assert.ok(PROMTOOL, 'promtool is required (REQUIRE_PROMTOOL=1) but was not found');
  try {
    const { stdout, stderr } = await run(PROMTOOL, args, { cwd, timeout: 60_000 });
    return { code: 0, out: stdout + stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, out: `${e.stdout}${e.stderr}` };
  }
}

const TEST_DIR = join(PROMETHEUS_DIR, 'tests');
const testFiles = () =>
  readdirSync(TEST_DIR)
    .filter((f) => f.endsWith('.test.yml'))
    .sort();

interface PromtoolTests {
  tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[];
}

describe('alert rules: shape', () => {
  const alerts = alertRules();

  test('every alert is named Groundwork*, once, with a severity, a summary, a description and its runbook anchor', () => {
    assert.ok(alerts.length >= 20, `only ${alerts.length} alerts`);
    const names = alerts.map((a) => a.alert);
    assert.deepEqual(
      names.filter((n, i) => names.indexOf(n) !== i),
      [],
      'duplicate alert names',
    );
    for (const a of alerts) {
      assert.match(a.alert, /^Groundwork[A-Z][A-Za-z0-9]+$/, a.alert);
      assert.ok(
        ['critical', 'warning', 'info'].includes(a.labels?.severity ?? ''),
        `${a.alert}: severity ${a.labels?.severity}`,
      );
      assert.ok((a.annotations?.summary ?? '').length > 10, `${a.alert}: summary`);
      assert.ok((a.annotations?.description ?? '').length > 20, `${a.alert}: description`);
      assert.equal(a.annotations?.runbook_url, `RUNBOOK.md#${a.alert.toLowerCase()}`, a.alert);
    }
  });

  test('every alert fires in a promtool test and stays quiet in another', () => {
    const fires = new Set<string>();
    const quiet = new Set<string>();
    for (const file of testFiles()) {
      const doc = parse(readFileSync(join(TEST_DIR, file), 'utf8')) as PromtoolTests;
      for (const t of doc.tests)
        for (const c of t.alert_rule_test ?? [])
          ((c.exp_alerts ?? []).length > 0 ? fires : quiet).add(c.alertname);
    }
    const names = alerts.map((a) => a.alert);
    assert.deepEqual(
      names.filter((n) => !fires.has(n)),
      [],
      'alerts never expected to fire',
    );
    assert.deepEqual(
      names.filter((n) => !quiet.has(n)),
      [],
      'alerts never expected to stay quiet',
    );
    const unknown = [...fires, ...quiet].filter((n) => !names.includes(n));
    assert.deepEqual(unknown, [], 'tests of alerts that do not exist');
  });

  test('every recording rule is used by an alert, another rule or a dashboard', () => {
    const used = new Set(
      [
        ...alertRules().map((a) => a.expr),
        ...recordingRules().map((r) => r.expr),
        ...dashboardQueries().map((q) => q.expr),
      ].flatMap((e) => promqlMetricNames(e)),
    );
    const unused = recordingRules()
      .map((r) => r.record)
      .filter((r) => !used.has(r));
    assert.deepEqual(unused, [], 'recording rules nothing reads');
  });

  const runbook = join(ROOT, 'RUNBOOK.md');
  test(
    'RUNBOOK.md has a section for every alert (its runbook_url anchor)',
    { skip: existsSync(runbook) ? false : 'no RUNBOOK.md yet' },
    () => {
      // GitHub's anchor of a heading: lower case, spaces to dashes, punctuation dropped.
      const anchors = new Set(
        readFileSync(runbook, 'utf8')
          .split('\n')
          .filter((l) => /^#{1,6} /.test(l))
          .map((l) =>
            l
              .replace(/^#+ /, '')
              .trim()
              .toLowerCase()
              .replace(/[^\w\- ]/g, '')
              .replace(/ /g, '-'),
          ),
      );
      const missing = alerts.map((a) => a.alert.toLowerCase()).filter((a) => !anchors.has(a));
      assert.deepEqual(missing, [], 'alerts without a RUNBOOK.md section');
    },
  );
});

describe('promtool', { skip: noPromtool }, () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'gw-promtool-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('check rules: the recording rules and alerts are valid', async () => {
    const { code, out } = await promtool(['check', 'rules', 'rules.yml', 'alerts.yml']);
    assert.equal(code, 0, out);
    assert.match(out, /rules\.yml\s+SUCCESS: \d+ rules found/);
    assert.match(out, /alerts\.yml\s+SUCCESS: \d+ rules found/);
  });

  test('check config: the scrape config and the rule files it loads are valid', async () => {
    // The token file exists only in the container: point the copy at a temporary one.
    for (const f of ['rules.yml', 'alerts.yml'])
      copyFileSync(join(PROMETHEUS_DIR, f), join(dir, f));
    const config = parse(readFileSync(join(PROMETHEUS_DIR, 'prometheus.yml'), 'utf8')) as {
      scrape_configs: { authorization?: { credentials_file?: string } }[];
    };
    const token = join(dir, 'metrics_token');
    writeFileSync(token, 'x'.repeat(32));
    for (const scrape of config.scrape_configs)
      if (scrape.authorization?.credentials_file) scrape.authorization.credentials_file = token;
    writeFileSync(join(dir, 'prometheus.yml'), stringify(config));
    const { code, out } = await promtool(['check', 'config', 'prometheus.yml'], dir);
    assert.equal(code, 0, out);
    assert.match(out, /SUCCESS: 2 rule files found/);
  });

  test('test rules: every promtool unit test passes', async () => {
    const files = testFiles();
    assert.ok(files.length >= 4);
    const { code, out } = await promtool(['test', 'rules', ...files], TEST_DIR);
    assert.equal(code, 0, out);
    assert.equal(out.match(/SUCCESS/g)?.length, files.length, out);
  });

  test('promtool rejects an expression that does not parse and a test whose alert cannot fire', async () => {
    writeFileSync(
      join(dir, 'broken.yml'),
      stringify({ groups: [{ name: 'x', rules: [{ alert: 'X', expr: 'sum(rate(x[5m])' }] }] }),
    );
    assert.notEqual((await promtool(['check', 'rules', 'broken.yml'], dir)).code, 0);
    // up has been 0 for one minute only: GroundworkInstanceDown (for: 2m) is still pending.
    writeFileSync(
      join(dir, 'wrong.test.yml'),
      stringify({
        rule_files: [join(PROMETHEUS_DIR, 'rules.yml'), join(PROMETHEUS_DIR, 'alerts.yml')],
        evaluation_interval: '1m',
        tests: [
          {
            interval: '1m',
            input_series: [
              { series: 'up{job="groundwork",instance="a",role="api"}', values: '1 0 0' },
            ],
            alert_rule_test: [
              {
                eval_time: '2m',
                alertname: 'GroundworkInstanceDown',
                exp_alerts: [
                  {
                    exp_labels: {
                      severity: 'critical',
                      job: 'groundwork',
                      instance: 'a',
                      role: 'api',
                    },
                  },
                ],
              },
            ],
          },
        ],
      }),
    );
    const wrong = await promtool(['test', 'rules', 'wrong.test.yml'], dir);
    assert.notEqual(wrong.code, 0, wrong.out);
    assert.match(wrong.out, /FAILED/);
  });
});
