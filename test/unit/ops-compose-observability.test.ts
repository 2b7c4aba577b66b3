/**
 * The observability stack (deploy/compose.observability.yaml, merged with deploy/compose.yaml),
 * checked without a Docker engine: every file it mounts exists, every service, volume and config it
 * names is declared, and the services reach each other where they listen: Prometheus scrapes the
 * app services on their port and sends to Alertmanager, Grafana's datasources point at Prometheus
 * and Loki, Alloy pushes to Loki and reads the app's compose project, Loki states its retention and
 * the docs state the same. Alertmanager's config is checked by `amtool` when it is installed.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { alertRules, ROOT } from '../helpers/metric-names.ts';

const run = promisify(execFile);
const DEPLOY = join(ROOT, 'deploy');

interface Service {
  image?: string;
  command?: string[] | string;
  volumes?: string[];
  configs?: { source: string; target: string }[];
  depends_on?: Record<string, unknown> | string[];
  ports?: string[];
  environment?: Record<string, string>;
}
interface Compose {
  name?: string;
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
  configs?: Record<string, { environment?: string; file?: string }>;
}

const read = (path: string) => readFileSync(join(DEPLOY, path), 'utf8');
const observability = parse(read('compose.observability.yaml')) as Compose;
const app = parse(read('compose.yaml')) as Compose;
const services = { ...app.services, ...observability.services };

/** `[source, target]` of each volume entry of a service (short syntax). */
function mounts(service: Service): { source: string; target: string }[] {
  return (service.volumes ?? []).map((v) => {
    const [source = '', target = ''] = v.split(':');
    return { source, target };
  });
}

/** The host file or folder a container path of a service comes from (its bind mounts). */
function hostPath(service: Service, containerPath: string): string | undefined {
  for (const { source, target } of mounts(service)) {
    if (!source.startsWith('.')) continue;
    if (containerPath === target) return resolve(DEPLOY, source);
    if (containerPath.startsWith(`${target}/`))
      return resolve(DEPLOY, source, containerPath.slice(target.length + 1));
  }
  return undefined;
}

const hostPort = (url: string) => {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
};

describe('observability compose stack', () => {
  test('it joins the app stack: the same project name, and new service names', () => {
    assert.equal(observability.name, app.name);
    for (const name of Object.keys(observability.services))
      assert.ok(!(name in app.services), `${name} is already a service of compose.yaml`);
    for (const name of ['prometheus', 'alertmanager', 'loki', 'alloy', 'grafana'])
      assert.ok(name in observability.services, `${name} missing`);
  });

  test('every file or folder it mounts exists; named volumes and configs are declared', () => {
    for (const [name, service] of Object.entries(observability.services)) {
      for (const { source } of mounts(service)) {
        if (source.startsWith('.'))
          assert.ok(existsSync(resolve(DEPLOY, source)), `${name}: ${source} does not exist`);
        else if (source.startsWith('/'))
          assert.equal(source, '/var/run/docker.sock', `${name}: unexpected host path ${source}`);
        else assert.ok(source in (observability.volumes ?? {}), `${name}: volume ${source}`);
      }
      for (const c of service.configs ?? [])
        assert.ok(c.source in (observability.configs ?? {}), `${name}: config ${c.source}`);
      const deps = Array.isArray(service.depends_on)
        ? service.depends_on
        : Object.keys(service.depends_on ?? {});
      for (const dep of deps) assert.ok(dep in services, `${name} depends on unknown ${dep}`);
    }
  });

  test('Alertmanager routes by the severities the alerts carry and inhibits only alerts that exist', () => {
    const config = parse(read('alertmanager/alertmanager.yml')) as {
      route: { routes: { matchers: string[] }[] };
      inhibit_rules: { source_matchers: string[]; target_matchers: string[] }[];
    };
    const names = new Set(alertRules().map((a) => a.alert));
    const severities = new Set(alertRules().map((a) => a.labels?.severity));
    const routed = config.route.routes
      .flatMap((r) => r.matchers)
      .flatMap((m) => /^severity=~?"([^"]+)"$/.exec(m)?.[1]?.split('|') ?? []);
    for (const s of severities) assert.ok(routed.includes(s ?? ''), `severity ${s} is not routed`);
    for (const rule of config.inhibit_rules)
      for (const m of [...rule.source_matchers, ...rule.target_matchers]) {
        const name = /^alertname="([^"]+)"$/.exec(m)?.[1];
        assert.ok(name && names.has(name), `inhibit rule names ${m}`);
      }
  });

  test('published ports stay on the loopback', () => {
    for (const [name, service] of Object.entries(observability.services))
      for (const p of service.ports ?? []) assert.match(p, /^127\.0\.0\.1:/, `${name}: ${p}`);
  });

  test('Prometheus scrapes the app services on their port, loads the mounted rules, alerts to Alertmanager', () => {
    const prometheus = services.prometheus as Service;
    const configPath = hostPath(prometheus, '/etc/prometheus/prometheus.yml');
    assert.equal(configPath, join(DEPLOY, 'prometheus/prometheus.yml'));
    const config = parse(readFileSync(configPath, 'utf8')) as {
      rule_files: string[];
      alerting: { alertmanagers: { static_configs: { targets: string[] }[] }[] };
      scrape_configs: {
        job_name: string;
        authorization?: { credentials_file: string };
        dns_sd_configs?: { names: string[]; port: number }[];
      }[];
    };
    for (const file of config.rule_files) {
      const host = hostPath(prometheus, `/etc/prometheus/${file}`);
      assert.ok(host && existsSync(host), `rule file ${file} is not mounted`);
    }
    const job = config.scrape_configs.find((s) => s.job_name === 'groundwork');
    assert.ok(job?.dns_sd_configs);
    const names = job.dns_sd_configs.flatMap((d) => d.names);
    assert.deepEqual(names.sort(), ['api', 'worker']);
    for (const d of job.dns_sd_configs) {
      // The app listens on PORT (default 3000, unset in compose.yaml); api publishes it.
      assert.equal(d.port, 3000);
      for (const n of d.names) assert.ok(n in app.services, `${n} is not an app service`);
    }
    assert.ok((app.services.api?.ports ?? []).some((p) => p.endsWith(':3000')));
    assert.ok(
      (prometheus.configs ?? []).some((c) => c.target === job.authorization?.credentials_file),
      'the token file is not provided',
    );
    const token =
      observability.configs?.[
        (prometheus.configs ?? []).find((c) => c.target === job.authorization?.credentials_file)
          ?.source ?? ''
      ];
    assert.equal(token?.environment, 'METRICS_TOKEN');
    const [am] = config.alerting.alertmanagers[0]?.static_configs[0]?.targets ?? [];
    assert.equal(am, 'alertmanager:9093');
    const retention = [prometheus.command ?? []].flat().find((a) => a.includes('retention.time'));
    assert.equal(retention, '--storage.tsdb.retention.time=15d');
  });

  test('Grafana mounts its provisioning; the datasources point at Prometheus and Loki where they listen', () => {
    const grafana = services.grafana as Service;
    const provisioning = hostPath(grafana, '/etc/grafana/provisioning');
    assert.equal(provisioning, join(DEPLOY, 'grafana/provisioning'));
    const provider = parse(
      readFileSync(join(provisioning, 'dashboards/dashboards.yml'), 'utf8'),
    ) as { providers: { options: { path: string } }[] };
    const dashboards = hostPath(grafana, provider.providers[0]?.options.path ?? '');
    assert.equal(dashboards, join(DEPLOY, 'grafana/dashboards'));
    const { datasources } = parse(
      readFileSync(join(provisioning, 'datasources/datasources.yml'), 'utf8'),
    ) as { datasources: { type: string; url: string }[] };
    const prom = datasources.find((d) => d.type === 'prometheus');
    const loki = datasources.find((d) => d.type === 'loki');
    assert.deepEqual(hostPort(prom?.url ?? ''), { host: 'prometheus', port: 9090 });
    assert.ok([services.prometheus?.command ?? []].flat().includes('--web.listen-address=:9090'));
    const lokiConfig = parse(read('loki/loki.yml')) as {
      server: { http_listen_port: number };
    };
    assert.deepEqual(hostPort(loki?.url ?? ''), {
      host: 'loki',
      port: lokiConfig.server.http_listen_port,
    });
    assert.match(
      grafana.environment?.GF_SECURITY_ADMIN_PASSWORD ?? '',
      /^\$\{GRAFANA_ADMIN_PASSWORD:\?/,
    );
  });

  test('Alloy reads the app project, labels by service, role and level only, and pushes to Loki', () => {
    const alloy = services.alloy as Service;
    const configFile = [alloy.command ?? []].flat().find((a) => a.endsWith('.alloy'));
    assert.ok(configFile);
    const host = hostPath(alloy, configFile);
    assert.equal(host, join(DEPLOY, 'alloy/config.alloy'));
    const config = readFileSync(host, 'utf8');
    assert.ok(config.includes(`"com.docker.compose.project=${app.name}"`));
    const keep = /regex\s*=\s*"([^"]+)"\s*\n\s*action\s*=\s*"keep"/.exec(config)?.[1] ?? '';
    for (const role of keep.split('|')) assert.ok(role in app.services, `${role} is not a service`);
    const labels = /stage\.labels\s*\{\s*values\s*=\s*\{([^}]*)\}/.exec(config)?.[1] ?? '';
    const names = [...labels.matchAll(/(\w+)\s*=/g)].map((m) => m[1]);
    assert.deepEqual(names.sort(), ['level', 'service']);
    assert.ok(config.includes('target_label  = "role"'));
    const url = /url\s*=\s*"([^"]+)"/.exec(config)?.[1] ?? '';
    const lokiPort = (parse(read('loki/loki.yml')) as { server: { http_listen_port: number } })
      .server.http_listen_port;
    assert.deepEqual(hostPort(url), { host: 'loki', port: lokiPort });
    assert.equal(new URL(url).pathname, '/loki/api/v1/push');
    // Every block that is referenced is defined.
    for (const ref of config.matchAll(
      /\b((?:discovery|loki)\.[a-z_.]+)\.([a-z_]+)\.(?:targets|output|rules|receiver)\b/g,
    ))
      assert.ok(config.includes(`${ref[1]} "${ref[2]}"`), `${ref[0]} is not defined`);
  });

  test('Loki states its retention, enforced by the compactor, and the docs state the same', () => {
    const loki = services.loki as Service;
    const host = hostPath(loki, '/etc/loki/loki.yml');
    assert.equal(host, join(DEPLOY, 'loki/loki.yml'));
    assert.ok([loki.command ?? []].flat().includes('-config.file=/etc/loki/loki.yml'));
    const config = parse(readFileSync(host, 'utf8')) as {
      limits_config: { retention_period: string };
      compactor: { retention_enabled: boolean; delete_request_store: string };
    };
    assert.equal(config.limits_config.retention_period, '744h');
    assert.equal(config.compactor.retention_enabled, true);
    assert.ok(config.compactor.delete_request_store);
    const docs = readFileSync(join(ROOT, 'docs/operations.md'), 'utf8');
    assert.ok(/logs are kept 31 days/i.test(docs), 'docs/operations.md: logs are kept 31 days');
    assert.ok(/metrics 15 days/i.test(docs), 'docs/operations.md: metrics 15 days');
  });
});

function findTool(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter))
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  return null;
}
const AMTOOL = findTool('amtool');

// Skipped without amtool, unless REQUIRE_AMTOOL=1 (CI installs it and sets it, so a failed
// install fails the test rather than skipping it).
test(
  'amtool accepts the Alertmanager config',
  {
    skip:
      AMTOOL !== null || process.env.REQUIRE_AMTOOL === '1'
        ? false
        : 'no amtool: apt-get install -y prometheus-alertmanager',
  },
  async () => {
    assert.ok(AMTOOL, 'amtool is required (REQUIRE_AMTOOL=1) but was not found');
    const am = services.alertmanager as Service;
    const host = hostPath(am, '/etc/alertmanager/alertmanager.yml');
    assert.ok(host);
    const { stdout } = await run(AMTOOL, ['check-config', host]);
    assert.match(stdout, /SUCCESS/);
  },
);
