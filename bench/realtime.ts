/**
 * Realtime benchmark (`npm run bench -- realtime`): real server processes (`src/main.ts`, with
 * `bench/realtime-preload.ts`) on a scratch database `gw_bench_realtime`, load from child
 * processes (`bench/realtime-client.ts`, each with its own file-descriptor limit), connections
 * spread over loopback source addresses 127.0.0.1-20 so client ports do not run out.
 *
 * (a) Idle connections held by one server process, and its memory per connection (RSS growth
 *     divided by the connections). Target: 50,000 at < 20 KB each.
 * (b) Two server processes and Redis: a broadcast channel with 10,000 subscribers (half on each)
 *     and personal messages to 10,000 channels; delivered messages/s and p99 delivery latency.
 *     Target: >= 100,000 delivered/s, p99 <= 200 ms.
 * (c) `authors.get` as a WebSocket command against `GET /api/v1/authors/:id` over HTTP keep-alive,
 *     50 in flight each. Target: WebSocket >= 1.5x HTTP.
 *
 * `BENCH_SCALE` (default 1) scales the connection counts (0.01: 500 idle, 100 subscribers);
 * `BENCH_DURATION` (s, default 10) each timed part; `BENCH_PARTS` (default `a,b,c`) which run. Needs root to raise `ulimit -n` for children.
 */
import autocannon from 'autocannon';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import WebSocket from 'ws';
import { admin, serverUrl } from './lib.ts';

const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const IDLE = Math.max(10, Math.round(50_000 * SCALE));
const SUBSCRIBERS = Math.max(10, Math.round(10_000 * SCALE));
const PERSONAL = Math.max(10, Math.round(10_000 * SCALE));
const BROADCAST_PER_S = 10;
const PERSONAL_PER_S = Math.max(10, Math.round(5_000 * SCALE));
const PER_CLIENT = 10_000;
const ADDRESSES = Array.from({ length: 20 }, (_, i) => `127.0.0.${String(i + 1)}`);
const DATABASE = 'gw_bench_realtime';
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PRELOAD = fileURLToPath(new URL('./realtime-preload.ts', import.meta.url));
const CLIENT = fileURLToPath(new URL('./realtime-client.ts', import.meta.url));
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

function databaseUrl(): string {
  const url = new URL(serverUrl());
  url.pathname = `/${DATABASE}`;
  return url.toString();
}

function baseEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    APP_ENV: 'test',
    LOG_LEVEL: 'warn',
    DATABASE_URL: databaseUrl(),
    RATE_LIMIT_ENABLED: 'false',
    MAX_EVENT_LOOP_DELAY_MS: '0',
    ARGON2_MEMORY_KIB: '64',
    ARGON2_TIME_COST: '1',
    AUTH_REQUIRE_VERIFIED_EMAIL: 'false',
    PUBLIC_URL: 'http://bench.groundwork.test',
    REALTIME_MAX_CONNECTIONS_PER_IP: '10000000',
    REALTIME_MESSAGES_PER_SECOND: '1000000',
    REALTIME_HISTORY_SIZE: '0',
    // The apps of the benchmark only (the preload adds them to the list).
    APPS: 'authors,rt-bench',
    ...extra,
  };
  delete env.NODE_TEST_CONTEXT;
  return env;
}

/** `node` under a shell that first raises the descriptor limit (root only; else as is). */
function spawnNode(args: string[], env: NodeJS.ProcessEnv, fds: number, ipc = false): ChildProcess {
  const quoted = args.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
  // Up to the hard limit (raising that needs CAP_SYS_RESOURCE, which a container may not have).
  const raise = `h=$(ulimit -Hn); w=${String(fds)}; if [ "$h" != unlimited ] && [ "$h" -lt "$w" ]; then w=$h; fi; ulimit -n "$w" && `;
  return spawn('bash', ['-c', `${raise}exec '${process.execPath}' ${quoted}`], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'inherit', 'inherit', ...(ipc ? (['ipc'] as const) : [])],
  });
}

interface Server {
  child: ChildProcess;
  port: number;
  base: string;
  /** The server process's pid (bash execs node: the same). */
  pid: number;
}

async function startServer(
  port: number,
  extra: Record<string, string>,
  fds: number,
): Promise<Server> {
  const child = spawnNode(
    ['--import', PRELOAD, 'src/main.ts', 'serve'],
    baseEnv({ PORT: String(port), HOST: '127.0.0.1', ...extra }),
    fds,
  );
  const base = `http://127.0.0.1:${String(port)}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error('server exited during start');
    const ok = await fetch(`${base}/health/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (i > 300) throw new Error('server not ready in 30 s');
    await sleep(100);
  }
  return { child, port, base, pid: child.pid as number };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  await Promise.race([once(child, 'exit'), sleep(15_000).then(() => child.kill('SIGKILL'))]);
}

function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${String(pid)}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

interface Client {
  child: ChildProcess;
  ask<T>(message: unknown): Promise<T>;
}

function startClient(): Client {
  const child = spawnNode([CLIENT], baseEnv(), PER_CLIENT * 2 + 1_000, true);
  return {
    child,
    async ask<T>(message: unknown): Promise<T> {
      const reply = once(child, 'message');
      child.send(message as never);
      const [answer] = (await reply) as [T & { error?: string }];
      if (answer.error) throw new Error(answer.error);
      return answer;
    },
  };
}

async function clients(total: number, job: (offset: number, count: number) => unknown) {
  const list: Client[] = [];
  const jobs: Promise<unknown>[] = [];
  for (let offset = 0; offset < total; offset += PER_CLIENT) {
    const c = startClient();
    list.push(c);
    jobs.push(c.ask(job(offset, Math.min(PER_CLIENT, total - offset))));
  }
  await Promise.all(jobs);
  return list;
}

async function migrate(): Promise<void> {
  const child = spawnNode(['--import', PRELOAD, 'src/main.ts', 'migrate'], baseEnv(), 1_024);
  const [code] = (await once(child, 'exit')) as [number];
  if (code !== 0) throw new Error(`migrate exited ${String(code)}`);
}

/** A moderator's access token from `server` (registered, verified and granted by SQL). */
async function moderatorToken(server: Server): Promise<string> {
  const email = `bench-${String(Date.now())}@example.com`;
  const password = 'violet-Harbor-83-quantum-Mosaic';
  const reg = await fetch(`${server.base}/api/v1/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, username: `bench_${String(Date.now())}`, password }),
  });
  if (reg.status !== 202) throw new Error(`register: ${String(reg.status)} ${await reg.text()}`);
  const db = new pg.Client({ connectionString: databaseUrl() });
  await db.connect();
  await db.query(`update gw_user set email_verified_at = now() where email = $1`, [email]);
  await db.query(
    `insert into gw_user_role (user_id, role_id)
     select u.id, r.id from gw_user u, gw_role r where u.email = $1 and r.name = 'moderator'
     on conflict do nothing`,
    [email],
  );
  await db.end();
  const login = await fetch(`${server.base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ login: email, password }),
  });
  if (login.status !== 200) throw new Error(`login: ${String(login.status)}`);
  return ((await login.json()) as { accessToken: string }).accessToken;
}

/** `count` idle connections: `IDLE`, or fewer when the descriptor limit cannot hold them. */
async function idle(count: number): Promise<Record<string, number>> {
  const server = await startServer(18_710, {}, count * 2 + 10_000);
  try {
    // One connection first: the WebSocket code paths are loaded before the baseline.
    const warm = await clients(10, (offset, n) => ({
      kind: 'idle',
      url: `ws://127.0.0.1:${String(server.port)}/ws`,
      count: n,
      addresses: ADDRESSES,
      offset,
    }));
    await sleep(1_000);
    const before = rssKiB(server.pid);
    const started = performance.now();
    const list = await clients(count, (offset, n) => ({
      kind: 'idle',
      url: `ws://127.0.0.1:${String(server.port)}/ws`,
      count: n,
      addresses: ADDRESSES,
      offset,
    }));
    const openSeconds = (performance.now() - started) / 1000;
    await sleep(3_000);
    const after = rssKiB(server.pid);
    const perConnection = ((after - before) * 1024) / count;
    const capped = count < IDLE ? ` (capped from ${fmt(IDLE)} by the descriptor limit)` : '';
    process.stdout.write(
      `(a) idle: ${fmt(count)} connections${capped} held by one process (opened in ${openSeconds.toFixed(1)} s); RSS ${fmt(before / 1024)} → ${fmt(after / 1024)} MB: ${fmt(perConnection)} bytes per connection (target ≥ 50,000 at < 20 KB)\n`,
    );
    for (const c of [...warm, ...list]) c.child.kill('SIGKILL');
    return {
      connections: count,
      capped: count < IDLE ? 1 : 0,
      bytesPerConnection: perConnection,
      rssBeforeKiB: before,
      rssAfterKiB: after,
    };
  } finally {
    await stop(server.child);
  }
}

async function broadcast(): Promise<Record<string, number>> {
  const redis = {
    REDIS_URL: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/0',
    REDIS_KEY_PREFIX: `gw-bench-rt-${String(process.pid)}:`,
  };
  const fds = (SUBSCRIBERS + PERSONAL) * 2 + 10_000;
  const s1 = await startServer(18_711, redis, fds);
  const s2 = await startServer(18_712, redis, fds);
  const servers = [s1, s2];
  const all: Client[] = [];
  try {
    const url = (i: number) => `ws://127.0.0.1:${String((servers[i % 2] as Server).port)}/ws`;
    // Half of each population on each server.
    let n = 0;
    const add = async (total: number, channels: 'broadcast' | 'personal') => {
      for (let offset = 0; offset < total; offset += PER_CLIENT / 2) {
        const count = Math.min(PER_CLIENT / 2, total - offset);
        const c = startClient();
        all.push(c);
        await c.ask({
          kind: 'subscribe',
          url: url(n++),
          count,
          channels,
          addresses: ADDRESSES,
          offset,
        });
      }
    };
    await add(SUBSCRIBERS, 'broadcast');
    await add(PERSONAL, 'personal');
    // Publishers: sockets on both servers publishing at a steady rate.
    const publisher = async (server: Server) => {
      const ws = new WebSocket(`ws://127.0.0.1:${String(server.port)}/ws`, ['groundwork.v1.json']);
      await once(ws, 'open');
      ws.send('{"type":"auth"}');
      await once(ws, 'message');
      return ws;
    };
    const pubs = [await publisher(s1), await publisher(s2)];
    await Promise.all(all.map((c) => c.ask({ kind: 'reset' }).catch(() => undefined)));
    for (const c of all) c.child.send('reset');
    const tickMs = 10;
    const started = performance.now();
    let sentBroadcast = 0;
    let sentPersonal = 0;
    while (performance.now() - started < DURATION * 1000) {
      const elapsed = (performance.now() - started) / 1000;
      const ts = Date.now();
      while (sentBroadcast < elapsed * BROADCAST_PER_S) {
        (pubs[sentBroadcast % 2] as WebSocket).send(
          JSON.stringify({ type: 'publish', channel: 'bench.broadcast', data: { ts } }),
        );
        sentBroadcast += 1;
      }
      while (sentPersonal < elapsed * PERSONAL_PER_S) {
        (pubs[sentPersonal % 2] as WebSocket).send(
          JSON.stringify({
            type: 'publish',
            channel: `bench.user:${String(sentPersonal % PERSONAL)}`,
            data: { ts },
          }),
        );
        sentPersonal += 1;
      }
      await sleep(tickMs);
    }
    await sleep(1_000); // the last ones in flight
    const seconds = (performance.now() - started) / 1000;
    const reports = await Promise.all(
      all.map((c) => c.ask<{ received: number; p50: number; p99: number; max: number }>('report')),
    );
    const received = reports.reduce((s, r) => s + r.received, 0);
    const p99 = Math.max(...reports.map((r) => r.p99));
    const p50 = Math.max(...reports.map((r) => r.p50));
    const expected = sentBroadcast * SUBSCRIBERS + sentPersonal;
    process.stdout.write(
      `(b) fan-out, 2 processes + Redis: ${fmt(SUBSCRIBERS)} broadcast subscribers × ${fmt(sentBroadcast)} messages + ${fmt(sentPersonal)} personal messages to ${fmt(PERSONAL)} channels: ${fmt(received)} of ${fmt(expected)} delivered, ${fmt(received / DURATION)}/s; latency p50 ${fmt(p50)} ms, p99 ${fmt(p99)} ms (worst client) (target ≥ 100,000/s, p99 ≤ 200 ms)\n`,
    );
    for (const p of pubs) p.close();
    return {
      deliveredPerSecond: received / DURATION,
      delivered: received,
      expected,
      p50,
      p99,
      seconds,
    };
  } finally {
    for (const c of all) c.child.kill('SIGKILL');
    await Promise.all(servers.map((s) => stop(s.child)));
  }
}

async function commands(): Promise<Record<string, number>> {
  const server = await startServer(18_713, {}, 10_000);
  try {
    const token = await moderatorToken(server);
    const made = await fetch(`${server.base}/api/v1/authors`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ name: 'Benchmark Author', bio: 'Read many times.' }),
    });
    if (made.status !== 201) throw new Error(`create: ${String(made.status)} ${await made.text()}`);
    const { id } = (await made.json()) as { id: string };
    const http = await autocannon({
      url: `${server.base}/api/v1/authors/${id}`,
      connections: 50,
      duration: DURATION,
      headers: { authorization: `Bearer ${token}` },
    });
    if (http.errors > 0 || http.non2xx > 0) throw new Error(`http: ${String(http.non2xx)} non-2xx`);
    const httpRate = http.requests.average;
    // 50 sockets, one command in flight each (as 50 keep-alive connections, one request each).
    const sockets = await Promise.all(
      Array.from({ length: 50 }, async () => {
        const ws = new WebSocket(`ws://127.0.0.1:${String(server.port)}/ws`, [
          'groundwork.v1.json',
          `bearer.${token}`,
        ]);
        // `ready` may come in the same packet as the upgrade's answer: listen before `open`.
        const ready = once(ws, 'message');
        await once(ws, 'open');
        await ready;
        return ws;
      }),
    );
    let done = 0;
    let failed = 0;
    let running = true;
    const frame = JSON.stringify({
      type: 'command',
      id: 'c',
      name: 'authors.get',
      payload: { id },
    });
    for (const ws of sockets) {
      ws.on('message', (raw: Buffer) => {
        if (raw.toString().startsWith('{"type":"result"')) done += 1;
        else failed += 1;
        if (running) ws.send(frame);
      });
      ws.send(frame);
    }
    await sleep(DURATION * 1000);
    running = false;
    const wsRate = done / DURATION;
    for (const ws of sockets) ws.close();
    process.stdout.write(
      `(c) authors.get: WebSocket ${fmt(wsRate)}/s vs HTTP keep-alive ${fmt(httpRate)}/s = ${(wsRate / httpRate).toFixed(2)}x${failed ? ` (${String(failed)} errors)` : ''} (target ≥ 1.5x)\n`,
    );
    return { wsPerSecond: wsRate, httpPerSecond: httpRate, ratio: wsRate / httpRate, failed };
  } finally {
    await stop(server.child);
  }
}

export async function main(): Promise<void> {
  const hard = Number(execFileSync('bash', ['-c', 'ulimit -Hn']).toString().trim());
  // The server also needs descriptors of its own (database pool, logs, listeners): keep 1,000.
  const idleCount = Number.isFinite(hard) ? Math.min(IDLE, hard - 1_000) : IDLE;
  if (idleCount < IDLE)
    process.stdout.write(
      `note: the hard descriptor limit is ${String(hard)}: one server process cannot hold ${fmt(IDLE)} sockets here, (a) opens ${fmt(idleCount)} (run as a user allowed to raise it, e.g. ulimit -Hn 200000 in the container's settings)\n`,
    );
  await admin(`drop database if exists ${DATABASE} with (force)`);
  await admin(`create database ${DATABASE}`);
  try {
    await migrate();
    process.stdout.write(
      `realtime benchmark: scale ${String(SCALE)}, ${String(DURATION)} s per timed part\n`,
    );
    const parts = (process.env.BENCH_PARTS ?? 'a,b,c').split(',');
    const results = {
      idle: parts.includes('a') ? await idle(idleCount) : null,
      fanout: parts.includes('b') ? await broadcast() : null,
      commands: parts.includes('c') ? await commands() : null,
    };
    process.stdout.write(`${JSON.stringify(results)}\n`);
  } finally {
    await admin(`drop database if exists ${DATABASE} with (force)`);
  }
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) await main();
