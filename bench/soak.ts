/**
 * Soak benchmark (`npm run bench -- soak [--minutes N | --ci | --smoke] [--rate R]`): mixed
 * traffic at a constant arrival rate for a long time, watching the server for leaks and stalls.
 *
 * One server child (`soak-server.ts`: the `all` process in production mode) on a scratch database
 * `gw_bench_soak` (created on the server at `BENCH_DATABASE_URL`, dropped at the end), Redis at
 * `BENCH_REDIS_URL` under a key prefix of its own (deleted at the end), an SMTP sink here. Virtual
 * users (3 per request/s, every 5th an operator) are inserted directly, signed in through the
 * API, then driven open-loop (`soak-traffic.ts`). Every 10 s: the server's RSS and heap used, and
 * both as of its latest full collection (the live heap), its event-loop delay p99 (from its
 * `/metrics`), its CPU, and the answers per status, latency p50/p99 and errors. The verdict
 * (`soak-stats.ts`): no errors, no growth of the live heap or of RSS after full collections past
 * the warm-up, event-loop delay p99 under its bound. Exits 1 when the verdict fails.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { SMTPServer } from 'smtp-server';
import { newId } from '../src/platform/db/index.ts';
import { PasswordHasher, identitySettings } from '../src/platform/identity/index.ts';
import { ServerChild, admin, serverUrl } from './lib.ts';
import {
  MB,
  SOAK_LIMITS,
  errorTotal,
  percentile,
  trend,
  verdict,
  type ErrorCounts,
  type Verdict,
} from './soak-stats.ts';
import {
  MIX,
  OPERATOR_EVERY,
  SOAK_PASSWORD,
  Traffic,
  USERS_PER_RPS,
  userIp,
  type Outcome,
  type VirtualUser,
} from './soak-traffic.ts';
import { loadAppConfig } from '../src/app.ts';

const DATABASE = 'gw_bench_soak';
const WINDOW_SECONDS = 10;
const DRAIN_TIMEOUT_MS = 15_000;
const OPERATOR_PERMISSIONS = [
  'users:read',
  'users:admin',
  'roles:read',
  'roles:admin',
  'audit:read',
];

interface Options {
  minutes: number;
  rate: number;
}

function options(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      minutes: { type: 'string' },
      rate: { type: 'string' },
      ci: { type: 'boolean' },
      smoke: { type: 'boolean' },
    },
  });
  const minutes = Number(
    values.minutes ??
      (values.smoke ? 2 : values.ci ? 10 : undefined) ??
      process.env.BENCH_SOAK_MINUTES ??
      30,
  );
  const rate = Number(values.rate ?? process.env.BENCH_SOAK_RATE ?? 200);
  if (!(minutes > 0) || !(rate > 0)) {
    process.stderr.write(
      'usage: npm run bench -- soak [--minutes N | --ci (10) | --smoke (2)] [--rate R]\n',
    );
    process.exit(64);
  }
  return { minutes, rate };
}

/** Warm-up excluded from the trend and the event-loop bound: 10% of the run, 30 s to 2 min. */
function warmupSeconds(total: number): number {
  return Math.min(120, Math.max(30, Math.round(total * 0.1)));
}

/** Accepts every message and counts them: the SMTP server the mail jobs deliver to. */
async function smtpSink(): Promise<{
  url: string;
  received: () => number;
  close: () => Promise<void>;
}> {
  let received = 0;
  const server = new SMTPServer({
    secure: false,
    disabledCommands: ['STARTTLS', 'AUTH'],
    authOptional: true,
    logger: false,
    onData(stream, _session, callback) {
      stream.resume();
      stream.on('end', () => {
        received++;
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${String(port)}`,
    received: () => received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Inserts the virtual users (one hash for all: same password) and the operator role. */
async function seedUsers(url: string, count: number): Promise<VirtualUser[]> {
  const hasher = new PasswordHasher(identitySettings(loadAppConfig({ APP_ENV: 'test' })).argon2);
  const hash = await hasher.hash(SOAK_PASSWORD);
  const users: VirtualUser[] = Array.from({ length: count }, (_, i) => ({
    index: i,
    id: newId(),
    email: `soak-${String(i)}@example.test`,
    username: `soak_${String(i)}`,
    ip: userIp(i + 1),
    operator: i % OPERATOR_EVERY === 0,
    accessToken: '',
    refreshToken: '',
    busy: false,
    renames: 0,
    moderator: false,
    jobs: [],
  }));
  const client = new pg.Client({ connectionString: url, application_name: 'bench:soak-seed' });
  await client.connect();
  try {
    await client.query(
      `insert into gw_user (id, email, username, password_hash, email_verified_at)
       select id, email, username, $4, now()
         from unnest($1::uuid[], $2::text[], $3::text[]) as u(id, email, username)`,
      [users.map((u) => u.id), users.map((u) => u.email), users.map((u) => u.username), hash],
    );
    await client.query(
      `insert into gw_role (id, name, description, permissions, mfa_required, builtin)
       values ($1, 'soak-operator', 'The soak benchmark''s administrators', $2::text[], false, false)`,
      [newId(), OPERATOR_PERMISSIONS],
    );
    await client.query(
      `insert into gw_user_role (user_id, role_id)
       select u.id, r.id from unnest($1::uuid[]) as u(id) join gw_role r on r.name = 'user'
       union all
       select u.id, r.id from unnest($2::uuid[]) as u(id) join gw_role r on r.name = 'soak-operator'`,
      [users.map((u) => u.id), users.filter((u) => u.operator).map((u) => u.id)],
    );
  } finally {
    await client.end();
  }
  return users;
}

/** The first sample of `name` (no labels, or any) in a Prometheus text exposition. */
function metric(text: string, name: string): number {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`))
      return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return NaN;
}

const emptyErrors = (): ErrorCounts => ({
  serverErrors: 0,
  unexpected: 0,
  connection: 0,
  timeouts: 0,
  notSent: 0,
});

interface Window {
  /** Seconds since the load started, at the window's end. */
  t: number;
  warmup: boolean;
  answers: number;
  byClass: Record<'2xx' | '3xx' | '4xx' | '5xx' | 'none', number>;
  errors: ErrorCounts;
  latencies: number[];
  heapUsedBytes: number;
  /** Heap used right after the latest full collection so far (the live heap). */
  liveHeapBytes: number;
  majorGcs: number;
  rssBytes: number;
  externalBytes: number;
  loopP99Ms: number;
  loopMaxMs: number;
  cpuPercent: number;
}

function newWindow(): Window {
  return {
    t: 0,
    warmup: true,
    answers: 0,
    byClass: { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0, none: 0 },
    errors: emptyErrors(),
    latencies: [],
    heapUsedBytes: NaN,
    liveHeapBytes: NaN,
    majorGcs: 0,
    rssBytes: NaN,
    externalBytes: NaN,
    loopP99Ms: NaN,
    loopMaxMs: NaN,
    cpuPercent: NaN,
  };
}

interface RouteStats {
  statuses: Record<string, number>;
  latencies: number[];
}

const fmt = (n: number, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : '-';
const sortedCopy = (values: readonly number[]) => Float64Array.from(values).sort();

function windowRows(windows: readonly Window[]): string[] {
  // At most ~30 rows: consecutive windows are merged (latencies pooled, memory as of the last).
  const step = Math.max(1, Math.ceil(windows.length / 30));
  const rows = [
    '| t (s) | answers/s | 2xx | 4xx | 5xx | errors | p50 (ms) | p99 (ms) | heap used (MB) | live heap (MB) | full GCs | RSS (MB) | loop p99 (ms) | CPU (%) |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (let i = 0; i < windows.length; i += step) {
    const group = windows.slice(i, i + step);
    const last = group.at(-1) as Window;
    const sum = (f: (w: Window) => number) => group.reduce((a, w) => a + f(w), 0);
    const lat = sortedCopy(group.flatMap((w) => w.latencies));
    const errors = sum((w) => errorTotal(w.errors));
    const span = group.length * WINDOW_SECONDS;
    rows.push(
      `| ${String(Math.round(last.t))}${group.some((w) => w.warmup) ? ' (warm-up)' : ''} | ${fmt(sum((w) => w.answers) / span, 1)} | ${String(sum((w) => w.byClass['2xx']))} | ${String(sum((w) => w.byClass['4xx']))} | ${String(sum((w) => w.byClass['5xx']))} | ${String(errors)} | ${fmt(percentile(lat, 50), 1)} | ${fmt(percentile(lat, 99), 1)} | ${fmt(last.heapUsedBytes / MB, 1)} | ${fmt(last.liveHeapBytes / MB, 1)} | ${String(sum((w) => w.majorGcs))} | ${fmt(last.rssBytes / MB, 1)} | ${fmt(Math.max(...group.map((w) => w.loopP99Ms)), 1)} | ${fmt(sum((w) => w.cpuPercent) / group.length, 0)} |`,
    );
  }
  return rows;
}

export async function main(): Promise<void> {
  const { minutes, rate } = options(process.argv.slice(3));
  const seconds = Math.round(minutes * 60);
  const warmup = warmupSeconds(seconds);
  const userCount = Math.max(60, Math.ceil(rate * USERS_PER_RPS));
  const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/0';
  const redisPrefix = `gwsoak:${String(process.pid)}:`;
  const metricsToken = randomBytes(24).toString('base64url');

  await admin(`drop database if exists ${DATABASE} with (force)`);
  await admin(`create database ${DATABASE}`);
  const url = new URL(serverUrl());
  url.pathname = `/${DATABASE}`;
  const sink = await smtpSink();
  const { privateKey } = generateKeyPairSync('ed25519');
  const env: Record<string, string> = {
    HOST: '127.0.0.1',
    DATABASE_URL: url.toString(),
    REDIS_URL: redisUrl,
    REDIS_KEY_PREFIX: redisPrefix,
    APP_SECRET: randomBytes(32).toString('base64url'),
    AUTH_JWT_PRIVATE_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    METRICS_TOKEN: metricsToken,
    PUBLIC_URL: 'https://soak.example.test',
    SMTP_URL: sink.url,
    MAIL_FROM: 'Groundwork <no-reply@soak.example.test>',
    // The load generator is the clients' proxy: each virtual user has its own address.
    TRUST_PROXY: '127.0.0.1',
  };
  const script = new URL('./soak-server.ts', import.meta.url);
  const server = await ServerChild.start(script, 'groundwork', [JSON.stringify(env)]);
  const base = `http://127.0.0.1:${String(server.port)}`;
  const scrape = async () => {
    const res = await fetch(`${base}/metrics`, {
      headers: { authorization: `Bearer ${metricsToken}` },
    });
    if (res.status !== 200) throw new Error(`/metrics: ${String(res.status)}`);
    return res.text();
  };

  const routes = new Map<string, RouteStats>();
  const windows: Window[] = [];
  let current = newWindow();
  const record = (o: Outcome) => {
    current.answers += o.status === 0 ? 0 : 1;
    const cls = o.status === 0 ? 'none' : (`${String(Math.floor(o.status / 100))}xx` as '2xx');
    current.byClass[cls] = (current.byClass[cls] ?? 0) + 1;
    if (o.error !== null) current.errors[o.error]++;
    current.latencies.push(o.latencyMs);
    let r = routes.get(o.route);
    if (r === undefined) routes.set(o.route, (r = { statuses: {}, latencies: [] }));
    const key = o.status === 0 ? (o.error ?? 'none') : String(o.status);
    r.statuses[key] = (r.statuses[key] ?? 0) + 1;
    r.latencies.push(o.latencyMs);
  };
  const notSent = () => {
    current.errors.notSent++;
  };

  let traffic: Traffic | undefined;
  let verdictResult: Verdict | undefined;
  try {
    const users = await seedUsers(url.toString(), userCount);
    traffic = new Traffic({ base, users, record, notSent });
    const setupStart = performance.now();
    await traffic.signInAll();
    const signInSeconds = (performance.now() - setupStart) / 1000;
    process.stderr.write(
      `soak: ${String(userCount)} users signed in in ${signInSeconds.toFixed(1)} s; ${String(rate)} operations/s for ${String(minutes)} min (warm-up ${String(warmup)} s)\n`,
    );
    // Setup's answers are not the soak's: start the record (and the server's loop histogram) afresh.
    routes.clear();
    current = newWindow();
    await scrape();
    const generatorLoop = monitorEventLoopDelay();
    generatorLoop.enable();

    const start = performance.now();
    const first = await server.report<{ cpuMicros: number; afterMajorGc: { count: number } }>();
    let cpuBefore = first.cpuMicros;
    // Memory right after each full collection during the load: the series the trend is fitted on.
    const afterGc: { t: number; heapUsed: number; rss: number }[] = [];
    let gcCount = first.afterMajorGc.count;
    let windowStart = start;
    let sampling = true;
    // Memory each second (the window keeps its trough); the window closes every 10 s.
    const sampler = (async () => {
      let nextClose = start + WINDOW_SECONDS * 1000;
      while (sampling) {
        await sleep(1000);
        if (!server.running) break;
        const m = await server.report<{
          cpuMicros: number;
          rss: number;
          heapUsed: number;
          external: number;
          afterMajorGc: { count: number; heapUsed: number; rss: number };
        }>();
        const t = (performance.now() - start) / 1000;
        if (m.afterMajorGc.count > gcCount) {
          current.majorGcs += m.afterMajorGc.count - gcCount;
          gcCount = m.afterMajorGc.count;
          afterGc.push({ t, heapUsed: m.afterMajorGc.heapUsed, rss: m.afterMajorGc.rss });
        }
        current.liveHeapBytes = afterGc.at(-1)?.heapUsed ?? NaN;
        current.heapUsedBytes = m.heapUsed;
        current.rssBytes = m.rss;
        current.externalBytes = m.external;
        const now = performance.now();
        if (now >= nextClose || !sampling) {
          // A failed scrape leaves the window's loop figures blank (the errors say why).
          const text = await scrape().catch((error: unknown) => {
            process.stderr.write(`soak: /metrics: ${String(error)}\n`);
            return '';
          });
          current.loopP99Ms = metric(text, 'nodejs_eventloop_lag_p99_seconds') * 1000;
          current.loopMaxMs = metric(text, 'nodejs_eventloop_lag_max_seconds') * 1000;
          current.cpuPercent = ((m.cpuMicros - cpuBefore) / 1000 / (now - windowStart)) * 100;
          current.t = (now - start) / 1000;
          current.warmup = current.t - WINDOW_SECONDS < warmup;
          cpuBefore = m.cpuMicros;
          windowStart = now;
          windows.push(current);
          current = newWindow();
          nextClose += WINDOW_SECONDS * 1000;
          const w = windows.at(-1) as Window;
          process.stderr.write(
            `soak: t=${fmt(w.t)} s  answers ${String(w.answers)}  errors ${String(errorTotal(w.errors))}  heap ${fmt(w.heapUsedBytes / MB, 1)} MB  rss ${fmt(w.rssBytes / MB, 1)} MB  loop p99 ${fmt(w.loopP99Ms, 1)} ms\n`,
          );
        }
      }
    })();
    // Awaited after the load; until then a failure must not be an unhandled rejection.
    sampler.catch(() => undefined);

    await traffic.run(rate, seconds, start);
    await Promise.race([traffic.drain(), sleep(DRAIN_TIMEOUT_MS)]);
    sampling = false;
    await sampler;
    generatorLoop.disable();
    const alive = server.running;

    // After the run: the queue and the mail, for the record.
    const db = new pg.Client({ connectionString: url.toString(), application_name: 'bench:soak' });
    await db.connect();
    const jobStates = Object.fromEntries(
      (
        await db.query<{ state: string; n: number }>(
          `select state, count(*)::int as n from pgboss.job where name = 'soak.work' group by state`,
        )
      ).rows.map((r) => [r.state, r.n]),
    );
    const mailStates = Object.fromEntries(
      (
        await db.query<{ status: string; n: number }>(
          `select status, count(*)::int as n from gw_mail_delivery group by status`,
        )
      ).rows.map((r) => [r.status, r.n]),
    );
    await db.end();

    const judged = windows.filter((w) => !w.warmup);
    const errors = emptyErrors();
    for (const w of windows)
      for (const k of Object.keys(errors) as (keyof ErrorCounts)[]) errors[k] += w.errors[k];
    // Outcomes that arrived after the last window closed (drain) still count.
    for (const k of Object.keys(errors) as (keyof ErrorCounts)[]) errors[k] += current.errors[k];
    const gcs = afterGc.filter((g) => g.t >= warmup);
    const ts = gcs.map((g) => g.t);
    verdictResult = verdict({
      errors,
      heap: trend(
        ts,
        gcs.map((g) => g.heapUsed),
        SOAK_LIMITS.heapMbPer10Min,
      ),
      rss: trend(
        ts,
        gcs.map((g) => g.rss),
        SOAK_LIMITS.rssMbPer10Min,
      ),
      eventLoopP99Ms: judged.map((w) => w.loopP99Ms).filter(Number.isFinite),
      serverAlive: alive,
    });
    const v = verdictResult;
    const all = sortedCopy([...routes.values()].flatMap((r) => r.latencies));
    const answered = windows.reduce((a, w) => a + w.answers, 0) + current.answers;
    const judgedText = (ok: boolean | null) =>
      ok === null
        ? `not judged (needs ${String(SOAK_LIMITS.minTrendSeconds / 60)} min and ${String(SOAK_LIMITS.minTrendSamples)} full collections after the warm-up)`
        : ok
          ? 'pass'
          : 'FAIL';

    const lines = [
      `\n## Soak (${process.version}, ${String(cpus().length)} cores, ${String(minutes)} min at ${String(rate)} operations/s, ${String(userCount)} users, warm-up ${String(warmup)} s, load average at the end ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')})\n`,
      ...windowRows(windows),
      '',
      '| Route | Answers | Statuses | p50 (ms) | p99 (ms) |',
      '| --- | ---: | --- | ---: | ---: |',
      ...[...routes.entries()]
        .sort((a, b) => b[1].latencies.length - a[1].latencies.length)
        .map(([route, r]) => {
          const lat = sortedCopy(r.latencies);
          const statuses = Object.entries(r.statuses)
            .map(([s, n]) => `${s}: ${String(n)}`)
            .join(', ');
          return `| ${route} | ${String(r.latencies.length)} | ${statuses} | ${fmt(percentile(lat, 50), 1)} | ${fmt(percentile(lat, 99), 1)} |`;
        }),
      '',
      `All answers: ${String(answered)}, p50 ${fmt(percentile(all, 50), 1)} ms, p99 ${fmt(percentile(all, 99), 1)} ms (from the moment each operation was due). Load generator's own event-loop delay p99: ${fmt(generatorLoop.percentile(99) / 1e6, 1)} ms.`,
      `Jobs (soak.work) by state: ${JSON.stringify(jobStates)}; mail deliveries by status: ${JSON.stringify(mailStates)}, ${String(sink.received())} messages at the SMTP sink.`,
      '',
      `Verdict: **${v.ok ? 'pass' : 'FAIL'}**${v.ok ? '' : ` (${v.reasons.join('; ')})`}`,
      `- errors: ${String(v.errors.total)} (5xx ${String(v.errors.serverErrors)}, unexpected status ${String(v.errors.unexpected)}, connection ${String(v.errors.connection)}, timeouts ${String(v.errors.timeouts)}, not sent ${String(v.errors.notSent)}): ${v.errors.ok ? 'pass' : 'FAIL'}`,
      `- live heap (heap used after each of ${String(v.heap.samples)} full collections after the warm-up): ${fmt(v.heap.mbPer10Min, 2)} MB per 10 min (limit ${String(v.heap.limitMbPer10Min)}), first third ${fmt(v.heap.firstThirdMb, 1)} MB, last third ${fmt(v.heap.lastThirdMb, 1)} MB: ${judgedText(v.heap.ok)}`,
      `- RSS (after the same collections): ${fmt(v.rss.mbPer10Min, 2)} MB per 10 min (limit ${String(v.rss.limitMbPer10Min)}), first third ${fmt(v.rss.firstThirdMb, 1)} MB, last third ${fmt(v.rss.lastThirdMb, 1)} MB: ${judgedText(v.rss.ok)}`,
      `- event-loop delay p99: worst window ${fmt(v.eventLoop.worstP99Ms, 1)} ms, median window ${fmt(v.eventLoop.medianP99Ms, 1)} ms (limit ${String(v.eventLoop.limitMs)} ms): ${v.eventLoop.ok === null ? 'not judged (no window after the warm-up)' : v.eventLoop.ok ? 'pass' : 'FAIL'}`,
      `- server process alive at the end: ${v.serverAlive ? 'yes' : 'NO'}`,
      '',
    ];
    const summary = {
      date: new Date().toISOString(),
      node: process.version,
      cpus: cpus().length,
      loadAverage: loadavg(),
      minutes,
      rate,
      users: userCount,
      warmupSeconds: warmup,
      mix: MIX,
      limits: SOAK_LIMITS,
      answered,
      latencyMs: { p50: percentile(all, 50), p99: percentile(all, 99) },
      generatorLoopP99Ms: generatorLoop.percentile(99) / 1e6,
      jobStates,
      mailStates,
      smtpReceived: sink.received(),
      verdict: v,
      afterMajorGc: afterGc,
    };
    process.stdout.write(lines.join('\n'));
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    const dir = new URL('./results/', import.meta.url);
    await mkdir(dir, { recursive: true });
    await writeFile(
      new URL('soak.json', dir),
      `${JSON.stringify(
        {
          ...summary,
          windows: windows.map(({ latencies, ...w }) => {
            const lat = sortedCopy(latencies);
            return { ...w, p50Ms: percentile(lat, 50), p99Ms: percentile(lat, 99) };
          }),
          routes: Object.fromEntries(
            [...routes.entries()].map(([route, r]) => {
              const lat = sortedCopy(r.latencies);
              return [
                route,
                { statuses: r.statuses, p50Ms: percentile(lat, 50), p99Ms: percentile(lat, 99) },
              ];
            }),
          ),
        },
        null,
        2,
      )}\n`,
    );
  } finally {
    await traffic?.close();
    await server.stop();
    await sink.close();
    await admin(`drop database if exists ${DATABASE} with (force)`);
    const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await redis.connect();
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${redisPrefix}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await redis.del(...keys);
      } while (cursor !== '0');
    } finally {
      redis.disconnect();
    }
  }
  if (verdictResult?.ok !== true) process.exitCode = 1;
}
