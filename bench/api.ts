/**
 * API benchmark (issue 23, `npm run bench -- api`): an authenticated listing through Groundwork's
 * whole stack against a bare server doing the least the same answer needs, in one run.
 *
 * - Groundwork: its `serve` command (`node src/main.ts serve`, from the sources) in production
 *   mode (`APP_ENV=production`: production argon2id, secrets, JSON logs at `info` to /dev/null,
 *   rate limits, session and permission checks as configured) with `REDIS_URL` set, one process
 *   per core (`BENCH_PROCESSES`, default 2), each on its own port (`api-server.ts`). Changed from
 *   the defaults, none on a request's path but the first: the per-tier rate limits (1,000,000 a
 *   minute: each account sends a few requests a second, above the free tier's 100 a minute, so
 *   limits are checked and never reached), the access token lifetime (2 h, for long series) and
 *   the shutdown drain delay (0).
 * - Bare: Fastify, one process per core too (`api-bare.ts`), verifying an EdDSA JWT with `jose`
 *   on every request, then sending the app's own statements (captured from the apps' repository
 *   code by `api-data.ts`) through a `pg` pool of Groundwork's size.
 *
 * Autocannon runs here, 50 connections spread over the processes (connection i to process i mod
 * n: the bench's own round-robin). Every request carries one of 1,000 accounts' tokens in turn
 * (and that account's client address as X-Forwarded-For, behind `TRUST_PROXY=127.0.0.1`): on
 * Groundwork, 1,000 real sessions, signed in through `POST /auth/login` (accounts inserted with
 * one argon2id hash at the configured cost, holding a role with `users:read`); on the bare server,
 * 1,000 tokens the bench signs with the same Ed25519 key (same claims, issuer and audience).
 *
 * The four listings: (a) `GET /admin/users` (needs `users:read`), (b) spots nearby (20 nearest
 * within 2 km of central Paris), (c) the shop catalog of a category by price with filters, (d) a
 * public dataset's rows (50, filtered and sorted). For each, on each server (alternating which
 * goes first): a warm-up (2 requests per account and process, every token's first sight, then
 * `BENCH_WARMUP` s, default 2), then `BENCH_DURATION` s (default 10)
 * measured: requests/s, latency p50 and p99, the server processes' CPU per request, and the Redis
 * commands and PostgreSQL transactions per request over that window (see `Counters` below); then,
 * on Groundwork, 2 s more with Redis's MONITOR on, counting the commands its processes send (the
 * round trips, see `Census`). Targets: Groundwork at least 1.0× the bare server's requests/s on
 * each listing, and at most 0.05 Redis round trips per request.
 *
 * The scratch database `gw_bench_api` (100,000 spots, shop items and dataset rows and 10,000
 * accounts at `BENCH_SCALE=1`) is dropped at the end unless `BENCH_KEEP=1` (a later run with the
 * same scale reuses it). Redis is a `redis-server` of the run's own unless `BENCH_REDIS_URL`
 * names one (then its counters include any other client's commands). `BENCH_CONFIG` (a JSON
 * object of variables) adds settings to the `serve` processes' environment for an experiment;
 * `BENCH_LISTINGS` (names, comma-separated) measures only those listings.
 * The table and the verdicts go to stdout, everything measured to `bench/results/api.json`.
 */
import autocannon from 'autocannon';
import { SignJWT, calculateJwkThumbprint, decodeJwt, exportJWK } from 'jose';
import { generateKeyPairSync, randomBytes, randomUUID, type KeyObject } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { once } from 'node:events';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import pg from 'pg';
import { pino } from 'pino';
import { enabledModules, loadAppConfig } from '../src/app.ts';
import { allApps } from '../src/apps/index.ts';
import { PasswordHasher, identitySettings } from '../src/platform/identity/index.ts';
import { createPlatform } from '../src/platform/runtime/index.ts';
import {
  DATABASE,
  LISTING_NAMES,
  LISTING_URLS,
  PASSWORD,
  SIGNED_IN,
  benchUrl,
  captureStatements,
  clientIp,
  counts,
  currentMark,
  loginOf,
  markOf,
  prepareDatabase,
  signedInIds,
  type BareListing,
  type ListingName,
} from './api-data.ts';
import type { BareOptions } from './api-bare.ts';
import { ServeProcess, redisCommands, startRedis } from './api-server.ts';
import { CONNECTIONS, PIPELINING, ServerChild, WARMUP_SECONDS, admin, serverUrl } from './lib.ts';

const TARGETS = { ratio: 1.0, redisPerRequest: 0.05 };
/** An idle PostgreSQL backend flushes its statistics 10 s after its last statement (PG 15+). */
const PG_STATS_SETTLE_SECONDS = 11;
/**
 * Requests before each warm-up, per account and process: connection i goes to process i mod n and
 * the accounts come in turn, so twice round gives every process nearly every account's token.
 */
const PRIMING_ROUNDS = 2;
/** The load during which Redis's MONITOR counts the commands Groundwork sends (see `Census`). */
const CENSUS_SECONDS = 2;
const HOST = '127.0.0.1';
const AGENT = 'groundwork-bench-api/1';
const SERVERS = ['bare', 'groundwork'] as const;
type ServerName = (typeof SERVERS)[number];

function positive(name: string, fallback: number): number {
  const raw = process.env[name];
  const value = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isFinite(value) || value <= 0)
    throw new Error(`${name} must be a positive number, got "${String(raw)}"`);
  return value;
}

/** Each request's headers: one account's token and client address, in turn. */
type Headers = Record<string, string>;

/** Signs every account in through the API, spread over the processes (a few at a time each). */
async function signIn(bases: string[]): Promise<string[]> {
  const tokens = new Array<string>(SIGNED_IN);
  let next = 0;
  const worker = async () => {
    while (next < SIGNED_IN) {
      const i = next++;
      const res = await fetch(`${bases[i % bases.length] as string}/api/v1/auth/login`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': AGENT,
          'x-forwarded-for': clientIp(i),
        },
        body: JSON.stringify({ login: loginOf(i), password: PASSWORD }),
      });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`sign-in of ${loginOf(i)}: ${res.status} ${text}`);
      const { accessToken } = JSON.parse(text) as { accessToken?: string };
      if (accessToken === undefined)
        throw new Error(`sign-in of ${loginOf(i)} gave no access token: ${text}`);
      tokens[i] = accessToken;
    }
  };
  await Promise.all(Array.from({ length: 4 * bases.length }, worker));
  return tokens;
}

/** The bare server's tokens: Groundwork's claims (`sub`, `sid`, issuer, audience), same key. */
async function signBareTokens(
  ids: string[],
  privateKey: KeyObject,
  publicKey: KeyObject,
  like: string,
): Promise<string[]> {
  const { iss, aud } = decodeJwt(like);
  if (typeof iss !== 'string' || typeof aud !== 'string')
    throw new Error('a Groundwork token without a string issuer and audience');
  const kid = await calculateJwkThumbprint(await exportJWK(publicKey));
  return Promise.all(
    ids.map((sub) =>
      new SignJWT({ sid: randomUUID() })
        .setProtectedHeader({ alg: 'EdDSA', kid, typ: 'at+jwt' })
        .setSubject(sub)
        .setIssuer(iss)
        .setAudience(aud)
        .setIssuedAt()
        .setExpirationTime('2h')
        .sign(privateKey),
    ),
  );
}

const headersOf = (tokens: string[]): Headers[] =>
  tokens.map((token, i) => ({
    authorization: `Bearer ${token}`,
    'x-forwarded-for': clientIp(i),
    'user-agent': AGENT,
  }));

/** Autocannon over every process's URL; each request takes the next account's headers. */
async function hit(
  bases: string[],
  url: string,
  headers: Headers[],
  length: { seconds: number } | { requests: number },
): Promise<autocannon.Result> {
  let n = 0;
  const result = await autocannon({
    // autocannon takes several URLs (connection i goes to URL i mod n); its types say one.
    url: bases.map((base) => `${base}${url}`) as unknown as string,
    connections: CONNECTIONS,
    pipelining: PIPELINING,
    ...('seconds' in length ? { duration: length.seconds } : { amount: length.requests }),
    requests: [
      {
        method: 'GET',
        setupRequest: (request) => ({
          ...request,
          headers: headers[n++ % headers.length],
        }),
      },
    ],
  });
  if (result.errors > 0 || result.non2xx > 0)
    throw new Error(
      `${url}: ${String(result.errors)} errors, ${String(result.non2xx)} non-2xx (by status: ${JSON.stringify(result.statusCodeStats)})`,
    );
  return result;
}

/** A page's items as compared between the servers: their ids, or the whole items (public data). */
async function pageOf(base: string, url: string, headers: Headers): Promise<string> {
  const res = await fetch(`${base}${url}`, { headers });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${base}${url}: ${String(res.status)} ${text}`);
  const { items } = JSON.parse(text) as { items: Record<string, unknown>[] };
  if (items.length === 0) throw new Error(`${url}: no items (the seed is too small?)`);
  return url.includes('/public-data/')
    ? JSON.stringify(items)
    : JSON.stringify(items.map((i) => i.id));
}

/**
 * What the measured window cost, read before and after it: the server processes' CPU, the Redis
 * server's commands by name (`INFO commandstats`, the bench's own `INFO` left out; commands run by
 * a script count each, so this is at least the round trips), and the bench database's committed
 * and rolled-back transactions (`pg_stat_database`: each statement outside a transaction is one;
 * pg_stat_statements is not loaded on this server). PostgreSQL's backends flush those counters at
 * most once a second while busy, and an idle one 10 s after its last statement: so each warm-up
 * starts `PG_STATS_SETTLE_SECONDS` after the previous load ended (what earlier loads left pending
 * is in before the window opens), and both readings, taken under the same steady load, lag alike.
 */
interface Counters {
  cpuMicros: number;
  redis: Map<string, number>;
  transactions: number;
}

/**
 * The Redis commands clients sent, per request, counted with MONITOR over a short load of its own
 * after the measured window (MONITOR slows Redis, so never during it): each command a client sent
 * counts once (pipelined ones too), a script's own calls not at all. So at least the round trips,
 * and exactly them when nothing is pipelined: what the round-trip target is judged on.
 */
interface Census {
  seconds: number;
  requests: number;
  commandsPerRequest: number;
  byName: Record<string, number>;
}

async function census(url: string, run: () => Promise<autocannon.Result>): Promise<Census> {
  // A plain connection in MONITOR mode, read line by line (`+<time> [<db> <client>] "CMD" ...`;
  // arguments are escaped, so a line never holds a line break); `[<db> lua]` marks a script's call.
  const { hostname, port, username, password } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port || 6379) });
  socket.setEncoding('utf8');
  const byName = new Map<string, number>();
  let commands = 0;
  let pending = '';
  // The `+OK`s before the stream: AUTH's (when the URL has a password), then MONITOR's.
  let oks = password === '' ? 1 : 2;
  let started!: () => void;
  const monitoring = new Promise<void>((resolve) => (started = resolve));
  socket.on('data', (chunk: string) => {
    const lines = (pending + chunk).split('\r\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      if (line === '+OK' && --oks === 0) started();
      const match = /^\+\d+\.\d+ \[\d+ ([^\]]+)\] "([^"]*)"/.exec(line);
      if (!match || match[1] === 'lua') continue;
      commands++;
      const name = (match[2] as string).toLowerCase();
      byName.set(name, (byName.get(name) ?? 0) + 1);
    }
  });
  const failed = new Promise<never>((_, reject) => socket.on('error', reject));
  failed.catch(() => undefined);
  try {
    await Promise.race([once(socket, 'connect'), failed]);
    if (password !== '')
      socket.write(
        `AUTH ${username === '' ? '' : `${decodeURIComponent(username)} `}${decodeURIComponent(password)}\r\n`,
      );
    socket.write('MONITOR\r\n');
    await Promise.race([monitoring, failed]);
    const r = await run();
    // The last lines of the stream, written as the last answers left.
    await sleep(200);
    const requests = r.requests.total;
    return {
      seconds: r.duration,
      requests,
      commandsPerRequest: commands / requests,
      byName: Object.fromEntries([...byName].map(([n, c]) => [n, c / requests])),
    };
  } finally {
    socket.destroy();
  }
}

interface Measurement {
  listing: ListingName;
  server: ServerName;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  bytesPerResponse: number;
  serverCpuMicrosPerRequest: number;
  /** Every command Redis ran (INFO commandstats over the window), scripts' own calls included. */
  redisCommandsPerRequest: number;
  redisCommandsPerRequestByName: Record<string, number>;
  /** Groundwork only: the commands its processes sent (see `Census`); null for the bare server. */
  redisClientCommands: Census | null;
  pgTransactionsPerRequest: number;
}

const clientCommands = (m: Measurement) => m.redisClientCommands?.commandsPerRequest ?? 0;

const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

function table(results: Measurement[], ratios: Record<ListingName, number>): string {
  return [
    '| Listing | Server | Requests/s | p50 (ms) | p99 (ms) | Server CPU (µs/req) | Redis round trips/req | Redis cmds/req (all) | PG xacts/req | Groundwork / bare |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...results.map(
      (m) =>
        `| ${m.listing} | ${m.server} | ${fmt(m.requestsPerSecond)} | ${String(m.p50Ms)} | ${String(m.p99Ms)} | ${fmt(m.serverCpuMicrosPerRequest)} | ${m.redisClientCommands === null ? '' : fmt(clientCommands(m), 3)} | ${fmt(m.redisCommandsPerRequest, 3)} | ${fmt(m.pgTransactionsPerRequest, 2)} | ${m.server === 'groundwork' ? ratios[m.listing].toFixed(2) : ''} |`,
    ),
  ].join('\n');
}

export async function main(): Promise<void> {
  const scale = positive('BENCH_SCALE', 1);
  const duration = positive('BENCH_DURATION', 10);
  const warmup = positive('BENCH_WARMUP', WARMUP_SECONDS);
  const processes = Math.round(positive('BENCH_PROCESSES', 2));
  const keep = process.env.BENCH_KEEP === '1';
  // `BENCH_LISTINGS` (comma-separated names) measures only those listings, for an experiment.
  const only = process.env.BENCH_LISTINGS?.split(',').map((n) => n.trim());
  const measured = LISTING_NAMES.filter((n) => only === undefined || only.includes(n));
  if (measured.length === 0)
    throw new Error(`BENCH_LISTINGS names none of ${LISTING_NAMES.join(', ')}`);
  const sizes = counts(scale);
  const started = performance.now();

  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const storageDir = await mkdtemp(join(tmpdir(), 'gw-bench-api-'));
  const redis = await startRedis();
  const env: Record<string, string> = {
    APP_ENV: 'production',
    // Configured by this environment only, as a container is (no `.env.production` file).
    GROUNDWORK_ENV_FILE: 'off',
    HOST,
    DATABASE_URL: benchUrl(),
    MIGRATE_ON_START: 'false',
    REDIS_URL: redis.url,
    REDIS_KEY_PREFIX: `gwbench-api:${String(process.pid)}:`,
    APP_SECRET: randomBytes(32).toString('base64url'),
    AUTH_JWT_PRIVATE_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    METRICS_TOKEN: randomBytes(24).toString('base64url'),
    PUBLIC_URL: 'https://bench.example.test',
    // Required in production; `serve` works no jobs, so nothing is ever sent there.
    SMTP_URL: 'smtp://127.0.0.1:2525',
    MAIL_FROM: 'Groundwork <no-reply@bench.example.test>',
    STORAGE_LOCAL_DIR: storageDir,
    // The load generator is the 1,000 clients' proxy: each sends its own address.
    TRUST_PROXY: '127.0.0.1',
    // Rate limits stay on (their cost is measured), each account well below its limit: the load
    // gives each a few requests a second, above the free tier's default of 100 a minute.
    RATE_LIMIT_FREE_PER_MIN: '1000000',
    RATE_LIMIT_PREMIUM_PER_MIN: '1000000',
    RATE_LIMIT_ENTERPRISE_PER_MIN: '1000000',
    // Long enough for a long series (the default 15 min could expire mid-run); no per-request cost.
    AUTH_ACCESS_TOKEN_TTL: '2h',
    // The bench stops the servers itself: no load balancer to drain from.
    SHUTDOWN_DRAIN_DELAY_MS: '0',
    ...(JSON.parse(process.env.BENCH_CONFIG ?? '{}') as Record<string, string>),
  };
  // The servers' own configuration, checked here first (a refusal names every bad variable).
  const config = loadAppConfig(env);
  const poolMax = config.database.poolMax;

  const gw: ServeProcess[] = [];
  const bare: ServerChild[] = [];
  const pgStats = new pg.Client({ connectionString: serverUrl(), application_name: 'bench:api' });
  const redisStats = new Redis(redis.url, { lazyConnect: true });
  try {
    // ---- database: made afresh unless it holds this seed already ----
    const mark = await currentMark();
    if (mark !== markOf(sizes)) {
      await admin(`drop database if exists ${DATABASE} with (force)`);
      await admin(`create database ${DATABASE}`);
    }
    process.stderr.write(
      mark === markOf(sizes)
        ? `reusing ${DATABASE} (${mark})\n`
        : `seeding ${DATABASE} (BENCH_SCALE=${String(scale)})\n`,
    );
    // This process's own platform on the bench database: migrations, seed, the apps' statements.
    const seedConfig = loadAppConfig({
      APP_ENV: 'test',
      LOG_LEVEL: 'warn',
      DATABASE_URL: benchUrl(),
      STORAGE_LOCAL_DIR: storageDir,
    });
    const platform = await createPlatform(seedConfig, {
      logger: pino({ level: 'warn' }),
      modules: enabledModules(seedConfig, allApps),
      role: 'bench',
    });
    let seed: { reused: boolean; seconds: number };
    let ids: string[];
    let listings: Record<ListingName, BareListing>;
    try {
      seed = await prepareDatabase(platform, sizes, () =>
        new PasswordHasher(identitySettings(config).argon2).hash(PASSWORD),
      );
      ids = await signedInIds(platform);
      listings = await captureStatements(platform, config);
    } finally {
      await platform.close();
    }
    if (!seed.reused) process.stderr.write(`seeded in ${seed.seconds.toFixed(1)} s\n`);

    // ---- servers ----
    process.stderr.write(
      `starting ${String(processes)} serve processes (production, Redis ${redis.private ? 'of this run' : redis.url}) and ${String(processes)} bare ones\n`,
    );
    for (let i = 0; i < processes; i++) gw.push(await ServeProcess.start(env));
    const bareOptions: BareOptions = {
      databaseUrl: benchUrl(),
      poolMax,
      publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      issuer: '',
      audience: '',
      listings: LISTING_NAMES.map((name) => listings[name]),
    };
    const bases: Record<ServerName, string[]> = {
      groundwork: gw.map((s) => `http://${HOST}:${String(s.port)}`),
      bare: [],
    };

    // ---- 1,000 sessions on Groundwork, 1,000 tokens for the bare server ----
    const signInStarted = performance.now();
    const gwTokens = await signIn(bases.groundwork);
    const signInSeconds = (performance.now() - signInStarted) / 1000;
    process.stderr.write(
      `${String(SIGNED_IN)} accounts signed in through the API in ${signInSeconds.toFixed(1)} s\n`,
    );
    const bareTokens = await signBareTokens(ids, privateKey, publicKey, gwTokens[0] as string);
    const claims = decodeJwt(gwTokens[0] as string);
    bareOptions.issuer = claims.iss as string;
    bareOptions.audience = claims.aud as string;
    const script = new URL('./api-bare.ts', import.meta.url);
    for (let i = 0; i < processes; i++)
      bare.push(await ServerChild.start(script, 'bare', [JSON.stringify(bareOptions)]));
    bases.bare = bare.map((s) => `http://${HOST}:${String(s.port)}`);
    const headers: Record<ServerName, Headers[]> = {
      groundwork: headersOf(gwTokens),
      bare: headersOf(bareTokens),
    };

    // ---- the same page from both, or the comparison means nothing ----
    for (const name of LISTING_NAMES) {
      const url = LISTING_URLS[name];
      const pages = await Promise.all(
        SERVERS.map((s) => pageOf(bases[s][0] as string, url, headers[s][0] as Headers)),
      );
      if (pages[0] !== pages[1])
        throw new Error(`${name}: Groundwork and the bare server answer different items`);
    }

    // ---- measurements ----
    await pgStats.connect();
    await redisStats.connect();
    const read = async (server: ServerName): Promise<Counters> => {
      const cpu =
        server === 'groundwork'
          ? gw.reduce((sum, s) => sum + s.cpuMicros(), 0)
          : (await Promise.all(bare.map((s) => s.cpuMicros()))).reduce((a, b) => a + b, 0);
      const [commands, { rows }] = await Promise.all([
        redisCommands(redisStats),
        pgStats.query<{ x: string }>(
          'select (xact_commit + xact_rollback)::text as x from pg_stat_database where datname = $1',
          [DATABASE],
        ),
      ]);
      return { cpuMicros: cpu, redis: commands, transactions: Number(rows[0]?.x ?? NaN) };
    };
    const results: Measurement[] = [];
    for (const [index, name] of measured.entries()) {
      const url = LISTING_URLS[name];
      for (const server of index % 2 === 0 ? SERVERS : [...SERVERS].reverse()) {
        process.stderr.write(
          `${name} on ${server}: ${String(PRIMING_ROUNDS * SIGNED_IN * processes)} requests and ${String(warmup)} s warm-up, ${String(duration)} s measured\n`,
        );
        // Earlier loads' database counters flushed before the window opens (see `Counters`).
        await sleep(Math.max(0, PG_STATS_SETTLE_SECONDS - warmup) * 1000);
        // Every account's token through every process (its first sight: verification, session
        // and permission lookups) before the timed warm-up, whatever the rate.
        await hit(bases[server], url, headers[server], {
          requests: PRIMING_ROUNDS * SIGNED_IN * processes,
        });
        await hit(bases[server], url, headers[server], { seconds: warmup });
        const before = await read(server);
        const r = await hit(bases[server], url, headers[server], { seconds: duration });
        const after = await read(server);
        const counted =
          server === 'groundwork'
            ? await census(redis.url, () =>
                hit(bases[server], url, headers[server], { seconds: CENSUS_SECONDS }),
              )
            : null;
        for (const s of gw)
          if (!s.running) throw new Error(`a serve process (pid ${String(s.pid)}) stopped`);
        const byName: Record<string, number> = {};
        let commands = 0;
        for (const [command, calls] of after.redis) {
          const delta = calls - (before.redis.get(command) ?? 0);
          if (delta === 0) continue;
          byName[command] = delta / r.requests.total;
          commands += delta;
        }
        results.push({
          listing: name,
          server,
          requestsPerSecond: r.requests.average,
          p50Ms: r.latency.p50,
          p99Ms: r.latency.p99,
          requests: r.requests.total,
          bytesPerResponse: r.throughput.total / r.requests.total,
          serverCpuMicrosPerRequest: (after.cpuMicros - before.cpuMicros) / r.requests.total,
          redisCommandsPerRequest: commands / r.requests.total,
          redisCommandsPerRequestByName: byName,
          redisClientCommands: counted,
          pgTransactionsPerRequest: (after.transactions - before.transactions) / r.requests.total,
        });
      }
    }

    // ---- report ----
    const row = (listing: ListingName, server: ServerName) =>
      results.find((m) => m.listing === listing && m.server === server) as Measurement;
    const ratios = Object.fromEntries(
      measured.map((n) => [
        n,
        row(n, 'groundwork').requestsPerSecond / row(n, 'bare').requestsPerSecond,
      ]),
    ) as Record<ListingName, number>;
    const met = Object.fromEntries(
      measured.map((n) => [
        n,
        {
          ratio: ratios[n] >= TARGETS.ratio,
          redis: clientCommands(row(n, 'groundwork')) <= TARGETS.redisPerRequest,
        },
      ]),
    ) as Record<ListingName, { ratio: boolean; redis: boolean }>;
    const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');
    const redisNote = redis.private
      ? 'a Redis server of this run: only the serve processes talk to it'
      : `${redis.url}, shared: its counters include any other client's commands`;
    process.stdout.write(
      [
        '',
        `## API (${process.version}, ${String(cpus().length)} cores; ${String(processes)} serve + ${String(processes)} bare processes; ${String(CONNECTIONS)} connections; ${String(SIGNED_IN)} accounts' tokens in turn; ${String(duration)} s measured after ${String(PRIMING_ROUNDS * SIGNED_IN * processes)} requests and ${String(warmup)} s of warm-up; BENCH_SCALE=${String(scale)})`,
        '',
        table(results, ratios),
        '',
        `Redis (${redisNote}): round trips/req = the commands the serve processes sent, counted with MONITOR over a ${String(CENSUS_SECONDS)} s load of its own after each measured window (pipelined commands count each: at least the round trips); cmds/req (all) = every command Redis ran over the measured window (INFO commandstats), those run inside scripts included.`,
        `PostgreSQL: transactions per request from pg_stat_database (xact_commit + xact_rollback of ${DATABASE}; each statement outside a transaction is one; pg_stat_statements is not loaded). Bare rows include idle Groundwork's background work.`,
        '',
        ...measured.map((n) => {
          const g = row(n, 'groundwork');
          const top = (byName: Record<string, number>) =>
            Object.entries(byName)
              .sort((a, b) => b[1] - a[1])
              .slice(0, 6)
              .map(([c, v]) => `${c} ${v.toFixed(3)}`)
              .join(', ') || 'none';
          return `${n}: Groundwork / bare ${ratios[n].toFixed(2)} (target >= ${TARGETS.ratio.toFixed(1)}: ${verdict(met[n].ratio)}); Redis round trips ${clientCommands(g).toFixed(3)}/request (target <= ${String(TARGETS.redisPerRequest)}: ${verdict(met[n].redis)}) [sent: ${top(g.redisClientCommands?.byName ?? {})}; run: ${top(g.redisCommandsPerRequestByName)}]`;
        }),
        '',
      ].join('\n'),
    );
    const report = {
      benchmark: 'api',
      date: new Date().toISOString(),
      node: process.version,
      cpus: cpus().length,
      settings: {
        scale,
        counts: sizes,
        processes,
        connections: CONNECTIONS,
        pipelining: PIPELINING,
        primingRequests: PRIMING_ROUNDS * SIGNED_IN * processes,
        warmupSeconds: warmup,
        durationSeconds: duration,
        accounts: SIGNED_IN,
        poolMax,
        redis: redis.private ? 'private' : redis.url,
        benchConfig: process.env.BENCH_CONFIG ?? null,
      },
      seed,
      signInSeconds,
      statements: Object.fromEntries(
        LISTING_NAMES.map((n) => [n, listings[n].statements.map((s) => s.text)]),
      ),
      results,
      ratios,
      targets: TARGETS,
      met,
      seconds: (performance.now() - started) / 1000,
    };
    const dir = new URL('./results/', import.meta.url);
    await mkdir(dir, { recursive: true });
    await writeFile(new URL('api.json', dir), `${JSON.stringify(report, null, 2)}\n`);
  } finally {
    redisStats.disconnect();
    await pgStats.end().catch(() => undefined);
    await Promise.all([...gw.map((s) => s.stop()), ...bare.map((s) => s.stop())]);
    if (!redis.private) await dropKeys(redis.url, env.REDIS_KEY_PREFIX as string);
    await redis.stop();
    await rm(storageDir, { recursive: true, force: true });
    if (keep) process.stderr.write(`keeping ${DATABASE} (BENCH_KEEP=1)\n`);
    else await admin(`drop database if exists ${DATABASE} with (force)`);
  }
}

/** Deletes this run's keys from a shared Redis. */
async function dropKeys(url: string, prefix: string): Promise<void> {
  const client = new Redis(url);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      if (keys.length > 0) await client.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
}
