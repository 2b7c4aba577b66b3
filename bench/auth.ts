/**
 * Auth benchmark (`npm run bench -- auth`), one server child (`auth-server.ts`) on a scratch
 * database `gw_bench_auth` (created on the server at `BENCH_DATABASE_URL`, dropped at the end),
 * autocannon here:
 *
 * 1. Sign-ins/s: `POST /auth/login` with production argon2id parameters (the OWASP row).
 * 2. Refreshes/s: `POST /auth/refresh`, 50 sessions' chains in a shared pool of live tokens (every
 *    request spends one, its answer's successor goes back in the pool), with the server's CPU
 *    per refresh (the "per core" figure: PostgreSQL's own CPU is not in it).
 * 3. Requests/s of one route with `auth: 'required'` (a valid token, the session check cached)
 *    against the same handler with `auth: 'none'`, alternated `BENCH_SAMPLES` times (default 3).
 *
 * Targets: authenticated ≥ 0.80 × unauthenticated; refreshes ≥ 1,200/s per core.
 */
import autocannon from 'autocannon';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { AUTH_BENCH_PATHS, BENCH_LOGIN, BENCH_PASSWORD } from './auth-server.ts';
import { CONNECTIONS, PIPELINING, ServerChild, WARMUP_SECONDS, admin, serverUrl } from './lib.ts';
import { identitySettings } from '../src/platform/identity/index.ts';
import { loadAppConfig } from '../src/app.ts';

const DATABASE = 'gw_bench_auth';
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 3);
const AUTH_TARGET = 0.8;
const REFRESH_TARGET_PER_CORE = 1_200;
/** One user agent for every request: a second device would mail "new sign-in" (no mailer here). */
const AGENT = { 'user-agent': 'groundwork-bench/1' };
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

interface Pair {
  accessToken: string;
  refreshToken: string;
}

async function signIn(base: string): Promise<Pair> {
  const res = await fetch(`${base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...AGENT },
    body: JSON.stringify({ login: BENCH_LOGIN, password: BENCH_PASSWORD }),
  });
  if (res.status !== 200) throw new Error(`sign-in: ${String(res.status)} ${await res.text()}`);
  return (await res.json()) as Pair;
}

function check(name: string, r: autocannon.Result): autocannon.Result {
  if (r.errors > 0 || r.non2xx > 0)
    throw new Error(`${name}: ${String(r.errors)} errors, ${String(r.non2xx)} non-2xx responses`);
  return r;
}

/** Sign-ins at the configured argon2 cost, one account (a success never counts to the lockout). */
function logins(base: string, duration: number) {
  return autocannon({
    url: `${base}/api/v1/auth/login`,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...AGENT },
    body: JSON.stringify({ login: BENCH_LOGIN, password: BENCH_PASSWORD }),
    connections: CONNECTIONS,
    pipelining: PIPELINING,
    duration,
  }).then((r) => check('login', r));
}

/**
 * Refreshes: every request spends the live token of one session's chain and puts the successor
 * its answer gives back in the pool, so every refresh is a real rotation (never the grace path).
 * The pool is shared, not kept in autocannon's per-connection `context`: autocannon resets that
 * context each time a connection loops over its `requests`, which here is after every request,
 * so a chain kept there would start again from a spent token (the grace path, then reuse).
 */
function refreshes(base: string, duration: number, tokens: string[]) {
  const live = [...tokens];
  // Every answer must carry a token never seen before: a repeat would be the grace path.
  const seen = new Set(tokens);
  let repeats = 0;
  return autocannon({
    url: `${base}/api/v1/auth/refresh`,
    connections: tokens.length,
    pipelining: 1,
    duration,
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...AGENT },
        setupRequest: (request) => {
          const token = live.shift();
          if (token === undefined) throw new Error('refresh: no live token left in the pool');
          return { ...request, body: JSON.stringify({ refreshToken: token }) };
        },
        onResponse: (status, body) => {
          if (status !== 200) return;
          const token = (JSON.parse(body) as Pair).refreshToken;
          if (seen.has(token)) repeats++;
          seen.add(token);
          live.push(token);
        },
      },
    ],
  }).then((r) => {
    if (repeats > 0) throw new Error(`refresh: ${String(repeats)} answers repeated a token`);
    return check('refresh', r);
  });
}

export async function main(): Promise<void> {
  // The defaults (the server child sets none): the OWASP row.
  const argon2 = identitySettings(loadAppConfig({ APP_ENV: 'test' })).argon2;
  await admin(`drop database if exists ${DATABASE}`);
  await admin(`create database ${DATABASE}`);
  const url = new URL(serverUrl());
  url.pathname = `/${DATABASE}`;
  const script = new URL('./auth-server.ts', import.meta.url);
  const server = await ServerChild.start(script, 'groundwork', [url.toString()]);
  const base = `http://127.0.0.1:${String(server.port)}`;
  try {
    // 1. Sign-ins.
    let before = await server.cpuMicros();
    const login = await logins(base, DURATION);
    const loginCpuUs = ((await server.cpuMicros()) - before) / login.requests.total;

    // 2. Refreshes: one session per connection.
    const sessions: string[] = [];
    for (let i = 0; i < CONNECTIONS + 10; i++) sessions.push((await signIn(base)).refreshToken);
    await refreshes(base, WARMUP_SECONDS, sessions.splice(0, 10));
    before = await server.cpuMicros();
    const refresh = await refreshes(base, DURATION, sessions);
    const refreshCpuUs = ((await server.cpuMicros()) - before) / refresh.requests.total;

    // 3. The same route with and without authentication, alternated.
    const { accessToken } = await signIn(base);
    const kinds = ['unauthenticated', 'authenticated'] as const;
    const routes: Record<
      (typeof kinds)[number],
      { rps: number[]; p99: number[]; cpuUs: number[] }
    > = {
      unauthenticated: { rps: [], p99: [], cpuUs: [] },
      authenticated: { rps: [], p99: [], cpuUs: [] },
    };
    // The same headers both ways (the `none` route ignores the token): only the check differs.
    const hit = (kind: (typeof kinds)[number], duration: number) =>
      autocannon({
        url: `${base}${AUTH_BENCH_PATHS[kind]}`,
        headers: { authorization: `Bearer ${accessToken}`, ...AGENT },
        connections: CONNECTIONS,
        pipelining: PIPELINING,
        duration,
      }).then((r) => check(kind, r));
    for (const kind of kinds) await hit(kind, WARMUP_SECONDS);
    for (let sample = 0; sample < SAMPLES; sample++) {
      for (const kind of sample % 2 === 0 ? kinds : [...kinds].reverse()) {
        before = await server.cpuMicros();
        const r = await hit(kind, DURATION);
        const cpu = (await server.cpuMicros()) - before;
        routes[kind].rps.push(r.requests.average);
        routes[kind].p99.push(r.latency.p99);
        routes[kind].cpuUs.push(cpu / r.requests.total);
      }
    }
    const ratio = median(routes.authenticated.rps) / median(routes.unauthenticated.rps);
    const cpuRatio = median(routes.unauthenticated.cpuUs) / median(routes.authenticated.cpuUs);
    const refreshPerCore = 1e6 / refreshCpuUs;

    const lines = [
      `\n## Auth (${process.version}, ${String(cpus().length)} cores, ${String(DURATION)} s runs, ${String(CONNECTIONS)} connections)\n`,
      `argon2id: ${String(argon2.memoryKib)} KiB, ${String(argon2.timeCost)} iterations, ${String(argon2.parallelism)} lane (OWASP); session-check cache in process.\n`,
      '| Load | Requests/s | p99 (ms) | Server CPU (µs/request) |',
      '| --- | ---: | ---: | ---: |',
      `| POST /auth/login | ${fmt(login.requests.average)} | ${String(login.latency.p99)} | ${loginCpuUs.toFixed(0)} |`,
      `| POST /auth/refresh | ${fmt(refresh.requests.average)} | ${String(refresh.latency.p99)} | ${refreshCpuUs.toFixed(0)} |`,
      ...kinds.map(
        (k) =>
          `| GET, auth ${k === 'authenticated' ? "'required' (Bearer)" : "'none'"} (median of ${String(SAMPLES)}) | ${fmt(median(routes[k].rps))} | ${String(median(routes[k].p99))} | ${median(routes[k].cpuUs).toFixed(1)} |`,
      ),
      '',
      `Authenticated / unauthenticated: ${ratio.toFixed(2)}× by requests/s, ${cpuRatio.toFixed(2)}× by server CPU per request (target ≥ ${String(AUTH_TARGET)}: ${ratio >= AUTH_TARGET ? 'met' : 'missed'} / ${cpuRatio >= AUTH_TARGET ? 'met' : 'missed'}).`,
      `Refreshes per core of the server process: ${fmt(refreshPerCore)}/s (target ≥ ${fmt(REFRESH_TARGET_PER_CORE)}: ${refreshPerCore >= REFRESH_TARGET_PER_CORE ? 'met' : 'missed'}).`,
      '',
    ];
    process.stdout.write(lines.join('\n'));
    const dir = new URL('./results/', import.meta.url);
    await mkdir(dir, { recursive: true });
    await writeFile(
      new URL('auth.json', dir),
      `${JSON.stringify(
        {
          date: new Date().toISOString(),
          argon2,
          login: { rps: login.requests.average, p99: login.latency.p99, cpuUs: loginCpuUs },
          refresh: { rps: refresh.requests.average, p99: refresh.latency.p99, cpuUs: refreshCpuUs },
          routes,
          ratio,
          cpuRatio,
          refreshPerCore,
        },
        null,
        2,
      )}\n`,
    );
  } finally {
    await server.stop();
    await admin(`drop database if exists ${DATABASE}`);
  }
}
