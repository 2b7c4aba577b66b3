/**
 * Traffic benchmark (`npm run bench -- traffic`):
 *
 * 1. Requests/s of one API route through the full stack without and with the rate limiter on the
 *    Redis store (at `BENCH_REDIS_URL`), each server in its own process, autocannon here, in one
 *    run, alternating the two servers `BENCH_SAMPLES` times (default 3) so drift hits both alike.
 *    Target: the limiter costs at most 15% of requests/s.
 * 2. The cache hit path (`getOrSet` on a present key) in process: p50/p99 for the in-process and
 *    the Redis backend (`bench/traffic-cache.ts`).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { load, ServerChild, WARMUP_SECONDS } from './lib.ts';
import { cacheHitLatency } from './traffic-cache.ts';
import { TRAFFIC_KINDS, TRAFFIC_PATH, type TrafficKind } from './traffic-server.ts';

const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 3);
const TARGET_DROP = 0.15;
const LABELS: Record<TrafficKind, string> = {
  unlimited: 'without limiter',
  limited: 'with limiter (Redis store)',
  'limited-memory': 'with limiter (in-process store)',
};
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

export async function main(): Promise<void> {
  const script = new URL('./traffic-server.ts', import.meta.url);
  const results = Object.fromEntries(
    TRAFFIC_KINDS.map((k) => [
      k,
      { rps: [] as number[], p99: [] as number[], cpuUs: [] as number[] },
    ]),
  ) as Record<TrafficKind, { rps: number[]; p99: number[]; cpuUs: number[] }>;
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
    `${JSON.stringify({ date: new Date().toISOString(), results, drop, cpuDrop, cache }, null, 2)}\n`,
  );
}
