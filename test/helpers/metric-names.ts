/**
 * The metric names the operations artefacts use (deploy/prometheus alerts and recording rules,
 * deploy/grafana dashboards) and the names the server exports, for the tests that hold them
 * together: test/integration/ops-metric-names.test.ts (against a booted app's registry) and
 * test/unit/ops-grafana.test.ts (the dashboards' shape).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Registry } from 'prom-client';
import { parse } from 'yaml';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const PROMETHEUS_DIR = join(ROOT, 'deploy/prometheus');
export const GRAFANA_DIR = join(ROOT, 'deploy/grafana');

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
export interface RecordingRule {
  record: string;
  expr: string;
}
interface RuleFile {
  groups: { name: string; rules: (AlertRule | RecordingRule)[] }[];
}

function ruleFile(name: string): RuleFile {
  return parse(readFileSync(join(PROMETHEUS_DIR, name), 'utf8')) as RuleFile;
}

/** Every alert of deploy/prometheus/alerts.yml. */
export function alertRules(): AlertRule[] {
  return ruleFile('alerts.yml').groups.flatMap((g) =>
    g.rules.filter((r): r is AlertRule => 'alert' in r),
  );
}

/** Every recording rule of deploy/prometheus/rules.yml. */
export function recordingRules(): RecordingRule[] {
  return ruleFile('rules.yml').groups.flatMap((g) =>
    g.rules.filter((r): r is RecordingRule => 'record' in r),
  );
}

/** A dashboard as the tests read it: the subset of Grafana's model they look at. */
export interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: TemplateVariable[] };
  [key: string]: unknown;
}
export interface DatasourceRef {
  type: string;
  uid: string;
}
export interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: DatasourceRef;
  targets?: { refId: string; expr: string; datasource?: DatasourceRef }[];
  panels?: Panel[];
}
export interface TemplateVariable {
  name: string;
  type: string;
  query?: string | { query: string };
  datasource?: DatasourceRef;
}

/** The dashboards of deploy/grafana/dashboards, by file name. */
export function dashboards(): { file: string; dashboard: Dashboard }[] {
  const dir = join(GRAFANA_DIR, 'dashboards');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => ({
      file,
      dashboard: JSON.parse(readFileSync(join(dir, file), 'utf8')) as Dashboard,
    }));
}

/** Panels of a dashboard, those inside collapsed rows included. */
export function allPanels(dashboard: Dashboard): Panel[] {
  return dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** Where a PromQL expression is used, for messages. */
export interface PromQuery {
  where: string;
  expr: string;
}

/** The PromQL of every panel target and query variable whose datasource is Prometheus. */
export function dashboardQueries(): PromQuery[] {
  const out: PromQuery[] = [];
  for (const { file, dashboard } of dashboards()) {
    for (const panel of allPanels(dashboard)) {
      for (const target of panel.targets ?? []) {
        const type = (target.datasource ?? panel.datasource)?.type;
        if (type === 'prometheus')
          out.push({ where: `${file} panel "${panel.title}" ${target.refId}`, expr: target.expr });
      }
    }
    for (const variable of dashboard.templating.list) {
      if (variable.type !== 'query' || variable.datasource?.type !== 'prometheus') continue;
      const query = typeof variable.query === 'string' ? variable.query : variable.query?.query;
      const expr = query === undefined ? undefined : variableExpression(query);
      if (expr) out.push({ where: `${file} variable ${variable.name}`, expr });
    }
  }
  return out;
}

/** The PromQL inside a Grafana Prometheus variable query (`label_values(expr, label)`...). */
function variableExpression(query: string): string | undefined {
  const labelValues = /^\s*label_values\((.*),\s*[a-zA-Z_]\w*\s*\)\s*$/s.exec(query);
  if (labelValues) return labelValues[1];
  if (/^\s*label_values\(\s*[a-zA-Z_]\w*\s*\)\s*$/.test(query)) return undefined;
  const result = /^\s*query_result\((.*)\)\s*$/s.exec(query);
  if (result) return result[1];
  return query;
}

/** Grafana's variables replaced by values PromQL accepts, so the text parses as PromQL. */
export function withGrafanaVariables(expr: string): string {
  return expr
    .replace(/\$__(rate_interval|interval|range)\b/g, '5m')
    .replace(/\$\{?__\w+\}?/g, '5m')
    .replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)/g, 'grafana_variable');
}

const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'offset',
  'inf',
  'nan',
  'atan2',
]);

/**
 * The metric names an expression selects. Hand-written (a tokenizer, not a parser): Prometheus's
 * own parser is Go, and no PromQL parser is among the installed packages. It drops comments,
 * strings, label matchers, ranges and grouping clauses, then keeps the identifiers that are not
 * keywords and not called (functions and aggregations are followed by a parenthesis). promtool
 * checks that the same expressions parse (test/unit/ops-prometheus.test.ts, ops-grafana.test.ts).
 */
export function promqlMetricNames(expr: string): string[] {
  const text = withGrafanaVariables(expr)
    .replace(/#[^\n]*/g, ' ')
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^{}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/gi, ' ');
  const names = new Set<string>();
  // Numbers (1, 0.99, 5e9, 0x1f) are consumed whole so their letters are not taken for names.
  const token = /(\d[\w.]*(?:[eE][+-]?\d+)?)|([a-zA-Z_:][\w:]*)(\s*\()?/g;
  for (const m of text.matchAll(token)) {
    const [, number, name, call] = m;
    if (number !== undefined || name === undefined || call !== undefined) continue;
    if (KEYWORDS.has(name.toLowerCase())) continue;
    names.add(name);
  }
  return [...names];
}

/**
 * Every series name a registry exports (counters, gauges, histograms with `_bucket`, `_sum` and
 * `_count`, summaries with `_sum` and `_count`), including metrics with no sample yet.
 */
export async function exportedSeriesNames(registry: Registry): Promise<Set<string>> {
  const names = new Set<string>();
  for (const metric of await registry.getMetricsAsJSON()) {
    names.add(metric.name);
    if (String(metric.type) === 'histogram')
      for (const suffix of ['_bucket', '_sum', '_count']) names.add(metric.name + suffix);
    if (String(metric.type) === 'summary')
      for (const suffix of ['_sum', '_count']) names.add(metric.name + suffix);
  }
  return names;
}

/** Series Prometheus itself adds to every target (`up`, `scrape_*`). */
export const PROMETHEUS_SERIES: ReadonlySet<string> = new Set([
  'up',
  'scrape_duration_seconds',
  'scrape_samples_scraped',
  'scrape_samples_post_metric_relabeling',
  'scrape_series_added',
]);

/** Each use of a name that is neither exported, a recording rule's output, nor Prometheus's own. */
export function unknownNames(
  queries: readonly PromQuery[],
  known: ReadonlySet<string>,
): { where: string; name: string }[] {
  const records = new Set(recordingRules().map((r) => r.record));
  return queries.flatMap(({ where, expr }) =>
    promqlMetricNames(expr)
      .filter((name) => !known.has(name) && !records.has(name) && !PROMETHEUS_SERIES.has(name))
      .map((name) => ({ where, name })),
  );
}

/** The PromQL of every alert and recording rule, with where it is. */
export function ruleQueries(): PromQuery[] {
  return [
    ...alertRules().map((r) => ({ where: `alert ${r.alert}`, expr: r.expr })),
    ...recordingRules().map((r) => ({ where: `record ${r.record}`, expr: r.expr })),
  ];
}

/**
 * The metric names registered in src/, read from the sources without running them: the `name` of
 * every `new Counter|Gauge|Histogram|Summary({...})` (with the histogram and summary suffixes) and
 * the name passed to the registering helpers (`gauge(...)`, `counter(registry, ...)`,
 * `fastCounter(registry, ...)`). A fast check for the unit tests; the integration test
 * (ops-metric-names) reads a booted app's registry instead.
 */
export function sourceMetricNames(): Set<string> {
  const names = new Set<string>();
  const files = readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) =>
    f.endsWith('.ts'),
  );
  for (const file of files) {
    const text = readFileSync(join(ROOT, 'src', file), 'utf8');
    if (!text.includes('prom-client') && !text.includes('fastCounter(')) continue;
    for (const m of text.matchAll(
      /new (Counter|Gauge|Histogram|Summary)\(\{[^}]*?name:\s*'([a-zA-Z_:][\w:]*)'/g,
    )) {
      const [, type, name] = m as unknown as [string, string, string];
      names.add(name);
      if (type === 'Histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
      if (type === 'Summary') for (const s of ['_sum', '_count']) names.add(name + s);
    }
    for (const m of text.matchAll(
      /\b(?:gauge|counter|fastCounter)\(\s*(?:[\w.]+,\s*)?'([a-zA-Z_:][\w:]*)'/g,
    ))
      names.add(m[1] as string);
  }
  return names;
}
