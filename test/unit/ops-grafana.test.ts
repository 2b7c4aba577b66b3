/**
 * The Grafana artefacts (deploy/grafana): every dashboard parses and satisfies the JSON Schema of
 * the subset Grafana needs (deploy/grafana/dashboard.schema.json, checked with Ajv), panel ids are
 * unique and panels fit the 24-column grid, every datasource reference resolves to a provisioned
 * datasource, every PromQL expression names metrics the server registers (read from the sources
 * here; test/integration/ops-metric-names.test.ts checks a booted app's registry) and parses
 * (promtool, when installed), and the Loki queries use only the labels the log shipper sets.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Ajv } from 'ajv';
import { parse, stringify } from 'yaml';
import { createMetricsRegistry } from '../../src/platform/observability/index.ts';
import { instrumentHttp } from '../../src/platform/observability/metrics.ts';
import {
  allPanels,
  dashboardQueries,
  dashboards,
  exportedSeriesNames,
  GRAFANA_DIR,
  promqlMetricNames,
  sourceMetricNames,
  unknownNames,
  withGrafanaVariables,
  type Dashboard,
  type DatasourceRef,
} from '../helpers/metric-names.ts';

const run = promisify(execFile);

interface ProvisionedDatasource {
  name: string;
  uid: string;
  type: string;
  url: string;
}

function provisionedDatasources(): ProvisionedDatasource[] {
  const dir = join(GRAFANA_DIR, 'provisioning/datasources');
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .flatMap(
      (f) =>
        (parse(readFileSync(join(dir, f), 'utf8')) as { datasources: ProvisionedDatasource[] })
          .datasources,
    );
}

/** Each datasource reference of a dashboard that names no provisioned datasource of its type. */
export function unresolvedDatasources(
  dashboard: Dashboard,
  provisioned: readonly ProvisionedDatasource[],
): string[] {
  const refs: { where: string; ref: DatasourceRef }[] = [];
  for (const panel of allPanels(dashboard)) {
    if (panel.datasource) refs.push({ where: `panel ${panel.id}`, ref: panel.datasource });
    for (const t of panel.targets ?? [])
      if (t.datasource) refs.push({ where: `panel ${panel.id} ${t.refId}`, ref: t.datasource });
  }
  for (const v of dashboard.templating.list)
    if (v.datasource) refs.push({ where: `variable ${v.name}`, ref: v.datasource });
  return refs
    .filter(({ ref }) => !provisioned.some((d) => d.uid === ref.uid && d.type === ref.type))
    .map(({ where, ref }) => `${where}: ${ref.type}/${ref.uid}`);
}

/** Panel ids used twice, and panels that do not fit the 24-column grid. */
export function layoutProblems(dashboard: Dashboard): string[] {
  const problems: string[] = [];
  const seen = new Set<number>();
  for (const panel of allPanels(dashboard)) {
    if (seen.has(panel.id)) problems.push(`panel id ${panel.id} used twice`);
    seen.add(panel.id);
    if (panel.gridPos.x + panel.gridPos.w > 24)
      problems.push(`panel ${panel.id} "${panel.title}" passes column 24`);
  }
  return problems;
}

/** The labels Grafana Alloy sets on the log streams (deploy/alloy/config.alloy). */
const LOG_LABELS = new Set(['service', 'role', 'level']);

/** Stream-selector labels of a LogQL query that the shipper does not set. */
function unknownLogLabels(expr: string): string[] {
  const selector = /^\s*\{([^}]*)\}/.exec(expr);
  if (!selector) return ['(no stream selector)'];
  return [...(selector[1] ?? '').matchAll(/([a-zA-Z_]\w*)\s*(=~|!~|!=|=)/g)]
    .map((m) => m[1] as string)
    .filter((l) => !LOG_LABELS.has(l));
}

const schema = JSON.parse(readFileSync(join(GRAFANA_DIR, 'dashboard.schema.json'), 'utf8')) as {
  $id: string;
};
const ajv = new Ajv({ allErrors: true });
const validate = ajv.compile(schema);

describe('grafana dashboards', () => {
  const all = dashboards();
  const provisioned = provisionedDatasources();

  test('the dashboards the issue asks for are there', () => {
    const uids = all.map((d) => d.dashboard.uid);
    for (const uid of [
      'groundwork-api',
      'groundwork-jobs',
      'groundwork-identity',
      'groundwork-webhooks',
      'groundwork-realtime',
      'groundwork-postgres',
      'groundwork-apps',
    ])
      assert.ok(uids.includes(uid), `${uid} missing`);
  });

  test('every dashboard satisfies the schema', () => {
    for (const { file, dashboard } of all) {
      const ok = validate(dashboard);
      assert.ok(ok, `${file}: ${ajv.errorsText(validate.errors, { separator: '\n' })}`);
    }
  });

  test('the schema refuses a panel without an id and a query panel without a datasource', () => {
    const { dashboard } = all[0] as { dashboard: Dashboard };
    const copy = structuredClone(dashboard);
    const panel = copy.panels.find((p) => p.type === 'timeseries');
    assert.ok(panel);
    delete (panel as Partial<typeof panel>).datasource;
    assert.equal(validate(copy), false);
    const copy2 = structuredClone(dashboard) as unknown as { panels: Record<string, unknown>[] };
    delete copy2.panels[0]?.id;
    assert.equal(validate(copy2), false);
  });

  test('uids and titles are unique across dashboards', () => {
    const uids = all.map((d) => d.dashboard.uid);
    const titles = all.map((d) => d.dashboard.title);
    assert.equal(new Set(uids).size, uids.length, 'duplicate uid');
    assert.equal(new Set(titles).size, titles.length, 'duplicate title');
  });

  test('panel ids are unique within each dashboard and panels fit the grid', () => {
    for (const { file, dashboard } of all) assert.deepEqual(layoutProblems(dashboard), [], file);
    const { dashboard } = all[0] as { dashboard: Dashboard };
    const copy = structuredClone(dashboard);
    copy.panels.push({ ...structuredClone(copy.panels[1] as (typeof copy.panels)[number]) });
    assert.match(layoutProblems(copy).join(), /used twice/);
  });

  test('every datasource reference resolves to a provisioned datasource', () => {
    assert.deepEqual(provisioned.map((d) => d.type).sort(), ['loki', 'prometheus']);
    for (const { file, dashboard } of all)
      assert.deepEqual(unresolvedDatasources(dashboard, provisioned), [], file);
    const { dashboard } = all[0] as { dashboard: Dashboard };
    const copy = structuredClone(dashboard);
    const panel = copy.panels.find((p) => p.datasource);
    assert.ok(panel?.datasource);
    panel.datasource = { type: 'prometheus', uid: 'nope' };
    assert.equal(unresolvedDatasources(copy, provisioned).length, 1);
  });

  test('every metric a dashboard names is registered by the server or a recording rule', async () => {
    const registry = createMetricsRegistry();
    instrumentHttp(registry);
    const known = new Set([...(await exportedSeriesNames(registry)), ...sourceMetricNames()]);
    assert.deepEqual(unknownNames(dashboardQueries(), known), []);
    assert.deepEqual(
      unknownNames([{ where: 'made up', expr: 'rate(http_requests_totl[5m])' }], known),
      [{ where: 'made up', name: 'http_requests_totl' }],
    );
  });

  test('the Loki queries select streams by the labels the shipper sets only', () => {
    let count = 0;
    for (const { file, dashboard } of all)
      for (const panel of allPanels(dashboard))
        for (const t of panel.targets ?? []) {
          if ((t.datasource ?? panel.datasource)?.type !== 'loki') continue;
          count++;
          assert.deepEqual(unknownLogLabels(t.expr), [], `${file} "${panel.title}"`);
        }
    assert.ok(count >= 5);
    assert.deepEqual(unknownLogLabels('{requestId="x"}'), ['requestId']);
  });

  test('the dashboards provider loads the folder the dashboards are in', () => {
    const provider = parse(
      readFileSync(join(GRAFANA_DIR, 'provisioning/dashboards/dashboards.yml'), 'utf8'),
    ) as { providers: { type: string; options: { path: string } }[] };
    assert.equal(provider.providers[0]?.type, 'file');
    assert.equal(provider.providers[0]?.options.path, '/var/lib/grafana/dashboards');
  });
});

function findPromtool(): string | null {
  if (process.env.PROMTOOL_PATH) return process.env.PROMTOOL_PATH;
  for (const dir of (process.env.PATH ?? '').split(delimiter))
    if (dir && existsSync(join(dir, 'promtool'))) return join(dir, 'promtool');
  return existsSync('/usr/bin/promtool') ? '/usr/bin/promtool' : null;
}
const PROMTOOL = findPromtool();
const noPromtool =
  PROMTOOL !== null || process.env.REQUIRE_PROMTOOL === '1'
    ? false
    : 'no promtool: apt-get install -y prometheus (or set PROMTOOL_PATH)';

describe('grafana dashboards: PromQL', { skip: noPromtool }, () => {
  test('every dashboard expression parses (promtool, with the variables filled in)', async () => {
    assert.ok(PROMTOOL, 'promtool is required (REQUIRE_PROMTOOL=1) but was not found');
    const queries = dashboardQueries();
    // Each expression as a recording rule: promtool parses it exactly as Prometheus would.
    const rules = queries.map((q, i) => ({
      record: `dashboard:query_${String(i)}`,
      expr: withGrafanaVariables(q.expr),
    }));
    const dir = mkdtempSync(join(tmpdir(), 'gw-grafana-'));
    try {
      writeFileSync(join(dir, 'queries.yml'), stringify({ groups: [{ name: 'q', rules }] }));
      const { stdout } = await run(PROMTOOL, ['check', 'rules', 'queries.yml'], { cwd: dir });
      assert.match(stdout, new RegExp(`SUCCESS: ${String(rules.length)} rules found`));
      // And the check would fail on a broken one.
      writeFileSync(
        join(dir, 'broken.yml'),
        stringify({ groups: [{ name: 'q', rules: [{ record: 'x:y', expr: 'sum(rate(x[5m])' }] }] }),
      );
      await assert.rejects(run(PROMTOOL, ['check', 'rules', 'broken.yml'], { cwd: dir }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.ok(queries.every((q) => promqlMetricNames(q.expr).length > 0));
  });
});
