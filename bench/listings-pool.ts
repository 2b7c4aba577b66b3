/**
 * Requests/s of one listing (spots nearby, anonymous) against the size of the database pool
 * (`DATABASE_POOL_MAX`) of one Groundwork process (issue 23, part 4; the rule is in
 * docs/scaling.md). Each size gets its own server process, a warm-up, then `BENCH_DURATION`
 * seconds of load from 50 connections; the sizes are measured in `BENCH_ROUNDS` rounds in
 * alternating order, so that the machine's drift does not favour one. On a shared machine the
 * figures are indicative: compare the sizes within one run.
 *
 *   node bench/listings-pool.ts                      # sizes 2, 5, 10, 20; 8 s each; 2 rounds
 *   BENCH_POOLS=1,2,4,8 BENCH_DURATION=5 node bench/listings-pool.ts
 */
import { CONNECTIONS, load, ServerChild, WARMUP_SECONDS } from './lib.ts';
import {
  LISTINGS,
  benchUrl,
  dropListingsDatabase,
  prepareListingsDatabase,
} from './listings-data.ts';

const POOLS = (process.env.BENCH_POOLS ?? '2,5,10,20').split(',').map(Number);
const DURATION = Number(process.env.BENCH_DURATION ?? 8);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const LISTING = (process.env.BENCH_LISTING ?? 'nearby') as keyof typeof LISTINGS;

interface Figure {
  rps: number[];
  p50: number[];
  p99: number[];
  cpu: number[];
}

async function main(): Promise<void> {
  await prepareListingsDatabase();
  const figures = new Map<number, Figure>(
    POOLS.map((p) => [p, { rps: [], p50: [], p99: [], cpu: [] }]),
  );
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? POOLS : [...POOLS].reverse();
    for (const size of order) {
      const server = await ServerChild.start(
        new URL('./listings-server.ts', import.meta.url),
        String(size),
        [benchUrl()],
      );
      try {
        const url = `http://127.0.0.1:${String(server.port)}${LISTINGS[LISTING]}`;
        await load(url, WARMUP_SECONDS);
        const cpu0 = await server.cpuMicros();
        const result = await load(url, DURATION);
        const cpu1 = await server.cpuMicros();
        const f = figures.get(size) as Figure;
        f.rps.push(result.requests.average);
        f.p50.push(result.latency.p50);
        f.p99.push(result.latency.p99);
        f.cpu.push((cpu1 - cpu0) / result.requests.total);
        process.stderr.write(
          `  round ${String(round + 1)} pool ${String(size)}: ${Math.round(result.requests.average).toString()} req/s p99 ${String(result.latency.p99)} ms\n`,
        );
      } finally {
        await server.stop();
      }
    }
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  process.stdout.write(
    `spots ${LISTING}, ${String(CONNECTIONS)} connections, ${String(DURATION)} s × ${String(ROUNDS)} rounds per size (busy machine: indicative)\n` +
      '| DATABASE_POOL_MAX | requests/s | p50 ms | p99 ms | server CPU µs/request |\n' +
      '| ---: | ---: | ---: | ---: | ---: |\n',
  );
  for (const size of POOLS) {
    const f = figures.get(size) as Figure;
    process.stdout.write(
      `| ${String(size)} | ${Math.round(mean(f.rps)).toLocaleString('en-US')} | ${mean(f.p50).toFixed(1)} | ${mean(f.p99).toFixed(1)} | ${mean(f.cpu).toFixed(0)} |\n`,
    );
  }
  if (process.env.BENCH_KEEP !== '1') await dropListingsDatabase();
}

await main();
