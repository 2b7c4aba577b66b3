/**
 * Traffic benchmark (`npm run bench -- traffic`):
 *
 * 1. Requests/s of one API route through the full stack without and with the rate limiter on the
 *    Redis store (at `BENCH_REDIS_URL`), each server in its own process, autocannon here, in one
 *    run, alternating the two servers `BENCH_SAMPLES` times (default 3) so drift hits both alike.
 *    Target: the limiter costs at most 15% of requests/s.
 * 2. 1,000 distinct signed-in clients, each far below its limit (issue 23): requests/s without
 *    the limiter, with it on the Redis store as configured (decisions in process from reserved
 *    units) and with every decision Redis's (`RATE_LIMIT_LOCAL_SHARE=0`, as before), the Redis
 *    commands per request and the limiter's script calls per request. Target: at most 0.05 Redis
 *    round trips per request.
 * 3. The cache hit path (`getOrSet` on a present key) in process: p50/p99 for the in-process and
 *    the Redis backend (`bench/traffic-cache.ts`).
 */
import autocannon from 'autocannon';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { CONNECTIONS, load, PIPELINING, ServerChild, WARMUP_SECONDS } from './lib.ts';
import { cacheHitLatency } from './traffic-cache.ts';
import {
  MANY_KINDS,
  TRAFFIC_KINDS,
  TRAFFIC_PATH,
  USER_HEADER,
  type TrafficKind,
  type TrafficReport,
} from './traffic-server.ts';

const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 3);
const TARGET_DROP = 0.15;
const LABELS: Record<TrafficKind, string> = {
  unlimited: 'without limiter',
  limited: 'with limiter (Redis store)',
  'limited-memory': 'with limiter (in-process store)',
  'many-unlimited': 'without limiter',
  'many-limited': 'with limiter (Redis store, decided in process)',
  'many-exact': "with limiter (Redis store, every decision Redis's)",
};
/** Distinct signed-in clients of the second scenario. */
const USERS = 1_000;
const TARGET_ROUND_TRIPS = 0.05;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

/**
 * Loads `url` as `USERS` clients in turn (each request names the next user), like `load`; any
 * error or non-2xx (a refusal: no client should reach its limit) fails the benchmark.
 */
async function loadUsers(url: string, duration: number): Promise<autocannon.Result> {
  let next = 0;
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    pipelining: PIPELINING,
    duration,
    requests: [
      {
        setupRequest: (request) => {
          next = (next + 1) % USERS;
          return {
            ...request,
            headers: { ...request.headers, [USER_HEADER]: `bench-user-${String(next)}` },
          };
        },
      },
    ],
  });
  if (result.errors > 0 || result.non2xx > 0) {
    throw new Error(
      `${url}: ${String(result.errors)} errors, ${String(result.non2xx)} non-2xx responses (by status: ${JSON.stringify(result.statusCodeStats)})`,
    );
  }
  return result;
}

interface ManyResult {
  rps: number[];
  p99: number[];
  cpuUs: number[];
  redisPerRequest: number[];
  callsPerRequest: number[];
  localShare: number[];
}

/** Scenario 2: `MANY_KINDS` alternated `SAMPLES` times. */
async function manyClients(script: URL): Promise<Record<(typeof MANY_KINDS)[number], ManyResult>> {
  const results = Object.fromEntries(
    MANY_KINDS.map((k) => [
      k,
      { rps: [], p99: [], cpuUs: [], redisPerRequest: [], callsPerRequest: [], localShare: [] },
    ]),
  ) as unknown as Record<(typeof MANY_KINDS)[number], ManyResult>;
  for (let sample = 0; sample < SAMPLES; sample++) {
    for (const kind of MANY_KINDS) {
      const server = await ServerChild.start(script, kind);
      try {
        const url = `http://127.0.0.1:${String(server.port)}${TRAFFIC_PATH}`;
        // The warm-up also gives each client its first decision (Redis's) and its reserve.
        await loadUsers(url, WARMUP_SECONDS);
        const before = await server.report<TrafficReport>();
        const r = await loadUsers(url, DURATION);
        const after = await server.report<TrafficReport>();
        const total = r.requests.total;
        const entry = results[kind];
        entry.rps.push(r.requests.average);
        entry.p99.push(r.latency.p99);
        entry.cpuUs.push((after.cpuMicros - before.cpuMicros) / total);
        entry.redisPerRequest.push((after.redisCommands - before.redisCommands) / total);
        if (after.limiter && before.limiter) {
          entry.callsPerRequest.push((after.limiter.calls - before.limiter.calls) / total);
          const local = after.limiter.local - before.limiter.local;
          const remote = after.limiter.remote - before.limiter.remote;
          entry.localShare.push(local / Math.max(1, local + remote));
        }
      } finally {
        await server.stop();
      }
    }
  }
  return results;
}

export async function main(): Promise<void> {
  const script = new URL('./traffic-server.ts', import.meta.url);
  const results = Object.fromEntries(
    TRAFFIC_KINDS.map((k) => [
      k,
      { rps: [] as number[], p99: [] as number[], cpuUs: [] as number[] },
    ]),
  ) as Record<(typeof TRAFFIC_KINDS)[number], { rps: number[]; p99: number[]; cpuUs: number[] }>;
  for (let sample = 0; sample < SAMPLES; sample++) {
    for (const kind of TRAFFIC_KINDS) {
      const server = await ServerChild.start(script, kind);
      try {
        const url = `http://127.0.0.1:${String(server.port)}${TRAFFIC_PATH}`;
        await load(url, WARMUP_SECONDS);
        const before = await server.cpuMicros();
        const r = await load(url, DURATION);
        const cpu = (await server.cpuMicros()) - before;
        results[kind].rps.push(r.requests.average);
        results[kind].p99.push(r.latency.p99);
        results[kind].cpuUs.push(cpu / r.requests.total);
      } finally {
        await server.stop();
      }
    }
  }
  const un = median(results.unlimited.rps);
  const lim = median(results.limited.rps);
  const drop = 1 - lim / un;
  // When the machine is busy, requests/s follow the load generator and the neighbours; the
  // server's CPU per request is the steadier figure: the drop a CPU-bound server would see.
  const cpuDrop = 1 - median(results.unlimited.cpuUs) / median(results.limited.cpuUs);
  const memDrop = 1 - median(results['limited-memory'].rps) / un;
  const many = await manyClients(script);
  const manyUn = median(many['many-unlimited'].rps);
  const manyRoundTrips = median(many['many-limited'].redisPerRequest);
  const cache = await cacheHitLatency();

  const lines = [
    `\n## Traffic (${process.version}, ${String(cpus().length)} cores, ${String(SAMPLES)} samples of ${String(DURATION)} s, medians)\n`,
    '| Server | Requests/s | p99 (ms) | Server CPU (µs/request) |',
    '| --- | ---: | ---: | ---: |',
    ...TRAFFIC_KINDS.map(
      (k) =>
        `| ${LABELS[k]} | ${fmt(median(results[k].rps))} | ${String(median(results[k].p99))} | ${median(results[k].cpuUs).toFixed(1)} |`,
    ),
    '',
    `Limiter cost (Redis store): ${(drop * 100).toFixed(1)}% of requests/s (target ≤ ${String(TARGET_DROP * 100)}%: ${drop <= TARGET_DROP ? 'met' : 'missed'}); by server CPU per request: ${(cpuDrop * 100).toFixed(1)}% (${cpuDrop <= TARGET_DROP ? 'met' : 'missed'}). In-process store: ${(memDrop * 100).toFixed(1)}% of requests/s.`,
    '',
    `### ${fmt(USERS)} distinct signed-in clients, each far below its limit (10,000 a minute)`,
    '',
    '| Server | Requests/s | vs without | p99 (ms) | Server CPU (µs/request) | Redis commands/request | Limiter calls/request | Decided in process |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...MANY_KINDS.map((k) => {
      const m = many[k];
      const rps = median(m.rps);
      const opt = (values: number[], digits: number) =>
        values.length === 0 ? '–' : median(values).toFixed(digits);
      return `| ${LABELS[k]} | ${fmt(rps)} | ${(rps / manyUn).toFixed(2)} | ${String(median(m.p99))} | ${median(m.cpuUs).toFixed(1)} | ${median(m.redisPerRequest).toFixed(4)} | ${opt(m.callsPerRequest, 4)} | ${m.localShare.length === 0 ? '–' : `${(median(m.localShare) * 100).toFixed(1)}%`} |`;
    }),
    '',
    `Redis round trips per request with the limiter deciding in process: ${manyRoundTrips.toFixed(4)} (target ≤ ${String(TARGET_ROUND_TRIPS)}: ${manyRoundTrips <= TARGET_ROUND_TRIPS ? 'met' : 'missed'}).`,
    '',
    '| Cache hit path (getOrSet) | p50 (µs) | p99 (µs) | ops/s |',
    '| --- | ---: | ---: | ---: |',
    ...cache.map(
      (c) =>
        `| ${c.backend} | ${c.p50Us.toFixed(1)} | ${c.p99Us.toFixed(1)} | ${fmt(c.opsPerSecond)} |`,
    ),
    '',
  ];
  process.stdout.write(lines.join('\n'));
  const dir = new URL('./results/', import.meta.url);
  await mkdir(dir, { recursive: true });
  await writeFile(
    new URL('traffic.json', dir),
    `${JSON.stringify({ date: new Date().toISOString(), results, drop, cpuDrop, many, cache }, null, 2)}\n`,
  );
}
