/**
 * Webhooks benchmark (`npm run bench -- webhooks`), end to end on real PostgreSQL (a scratch
 * database `gw_bench_webhooks` on `BENCH_DATABASE_URL`, dropped at the end): events published
 * with `platform.events.publish` in their own transactions, dispatched by the events
 * dispatcher to the webhooks fan-out, delivered by the worker (all in this process, as `all`
 * runs) to receivers in a child process (bench/webhooks-receiver.ts), one HTTP server per
 * endpoint on 127.0.0.1.
 *
 * 1. Fan-out: one event to 100 endpoints, 5 times; lag of each delivery = arrival at the
 *    receiver minus the event's time (taken just before its transaction commits).
 * 2. Steady stream: `BENCH_WEBHOOK_RATE` events/s (default 25, i.e. 2,500 deliveries/s) for
 *    `BENCH_WEBHOOK_SECONDS` (default 20) to 100 healthy endpoints: deliveries/s end to end and
 *    the lag's p50/p99/max.
 * 3. Backlog: 200 events at once (20,000 deliveries): how fast the backlog drains.
 * 4. The same steady stream to another owner's 100 endpoints, 10 of which never answer (each
 *    attempt ends at WEBHOOKS_TIMEOUT, 15 s): the 90 healthy endpoints' lag.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { Type } from 'typebox';
import { knownModules } from '../src/app.ts';
import { allMigrations } from '../src/migrations/index.ts';
import { loadConfig } from '../src/platform/config/index.ts';
import { migrateToLatest, newId, openDatabase, withTransaction } from '../src/platform/db/index.ts';
import { defineEvent } from '../src/platform/events/index.ts';
import { defineModule } from '../src/platform/modules/index.ts';
import { createLogger } from '../src/platform/observability/index.ts';
import { createPlatform, enabledModules } from '../src/platform/runtime/index.ts';
import { stopWebhooks, webhooksRuntime } from '../src/platform/webhooks/index.ts';
import { insertEndpoint } from '../src/platform/webhooks/repository.ts';
import { webhooksDb } from '../src/platform/webhooks/tables.ts';
import { newWebhookSecret } from '../src/platform/webhooks/transport.ts';

const SERVER = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const DATABASE = 'gw_bench_webhooks';
const ENDPOINTS = 100;
const HANGING = 10;
const RATE = Number(process.env.BENCH_WEBHOOK_RATE ?? 25);
const SECONDS = Number(process.env.BENCH_WEBHOOK_SECONDS ?? 20);
const BACKLOG_EVENTS = 200;
const THROUGHPUT_TARGET = 2_000;
const LAG_TARGET_MS = 1_000;

const happened = defineEvent({
  type: 'bench.thing.happened',
  description: 'A benchmark event.',
  payload: Type.Object({ n: Type.Integer(), note: Type.String() }),
  example: { n: 1, note: 'one' },
  visibility: { permission: 'bench:read', ownerVisible: true },
});
const benchModule = defineModule({
  name: 'bench',
  description: 'Webhooks benchmark events.',
  events: [happened],
});

interface ReceiverStats {
  received: number;
  hungRequests: number;
  lags: number[];
  lastAt: number;
  duplicates: number;
}

async function admin(sql: string): Promise<void> {
  const client = new pg.Client(SERVER);
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

function dbUrl(): string {
  const url = new URL(SERVER);
  url.pathname = `/${DATABASE}`;
  return url.toString();
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

function lagSummary(lags: readonly number[]) {
  const sorted = [...lags].sort((a, b) => a - b);
  return {
    n: sorted.length,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted.at(-1) ?? NaN,
  };
}

class ReceiverChild {
  readonly #child: ChildProcess;
  #waiting: ((message: unknown) => void) | null = null;

  constructor() {
    this.#child = fork(new URL('./webhooks-receiver.ts', import.meta.url), [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.#child.on('message', (m) => {
      const w = this.#waiting;
      this.#waiting = null;
      w?.(m);
    });
  }

  #ask<T>(message: object): Promise<T> {
    return new Promise<T>((resolve) => {
      this.#waiting = resolve as (m: unknown) => void;
      this.#child.send(message);
    });
  }

  start(healthy: number, hanging: number) {
    return this.#ask<{ ports: { port: number; hangs: boolean }[] }>({
      kind: 'start',
      healthy,
      hanging,
    });
  }

  stats(reset = false) {
    return this.#ask<ReceiverStats>({ kind: 'stats', reset });
  }

  stop(): void {
    this.#child.kill();
  }
}

export async function main(): Promise<void> {
  await admin(`drop database if exists ${DATABASE} with (force)`);
  await admin(`create database ${DATABASE}`);
  const config = loadConfig(
    {
      APP_ENV: 'test',
      LOG_LEVEL: 'warn',
      DATABASE_URL: dbUrl(),
      JOBS_POLL_INTERVAL_MS: '500',
      JOBS_POOL_MAX: '10',
      WEBHOOKS_ALLOW_PRIVATE_NETWORKS: 'true',
    },
    { modules: [...knownModules(), benchModule] },
  );
  const logger = createLogger({ level: 'warn', base: { service: 'bench' } });
  const database = await openDatabase(config, { logger, url: dbUrl() });
  await migrateToLatest(database.db, allMigrations([benchModule]));
  const platform = await createPlatform(config, {
    modules: enabledModules(config, [benchModule]),
    database,
    redis: null,
    work: true,
    logger,
  });
  const receiver = new ReceiverChild();
  const report: Record<string, unknown> = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    loadAverageAtStart: loadavg()[0],
    settings: {
      endpoints: ENDPOINTS,
      rateEventsPerSecond: RATE,
      seconds: SECONDS,
      timeoutS: 15,
      concurrencyPerEndpoint: 10,
    },
  };
  try {
    const { ports } = await receiver.start(ENDPOINTS + ENDPOINTS - HANGING, HANGING);
    const runtime = webhooksRuntime(platform);
    const owners = [newId(), newId()];
    for (const [i, id] of owners.entries())
      await database.pool.query(
        `insert into gw_user (id, email, username, password_hash) values ($1, $2, $3, 'x')`,
        [id, `bench${i}@example.com`, `bench_${i}`],
      );
    // Owner 0: 100 healthy endpoints; owner 1: 90 healthy and the 10 that hang.
    const healthyPorts = ports.filter((p) => !p.hangs).map((p) => p.port);
    const hangingPorts = ports.filter((p) => p.hangs).map((p) => p.port);
    const plan = [
      ...healthyPorts.slice(0, ENDPOINTS).map((port) => ({ owner: owners[0] ?? '', port })),
      ...healthyPorts.slice(ENDPOINTS).map((port) => ({ owner: owners[1] ?? '', port })),
      ...hangingPorts.map((port) => ({ owner: owners[1] ?? '', port })),
    ];
    for (const { owner, port } of plan) {
      await insertEndpoint(
        webhooksDb(database.db),
        {
          id: newId(),
          ownerId: owner,
          url: `http://127.0.0.1:${port}/hook`,
          description: '',
          eventTypes: [],
          enabled: true,
          ordered: false,
          rateLimitPerSecond: null,
        },
        { id: newId(), sealed: runtime.box.seal(newWebhookSecret()) },
      );
    }

    let n = 0;
    const publish = (owner: string) =>
      withTransaction(database.db, (trx) =>
        platform.events.publish(trx, happened, {
          data: { n: n++, note: 'benchmark event' },
          ownerId: owner,
        }),
      );
    const waitFor = async (count: number, timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const s = await receiver.stats();
        if (s.received >= count || Date.now() > deadline) return s;
        await sleep(50);
      }
    };

    // Warm-up: connections, prepared plans, JIT.
    for (let i = 0; i < 5; i++) await publish(owners[0] ?? '');
    await waitFor(5 * ENDPOINTS, 30_000);
    await receiver.stats(true);

    // 1. One event fanned out to 100 endpoints, five times.
    const bursts: { lastMs: number }[] = [];
    const burstLags: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = Date.now();
      await publish(owners[0] ?? '');
      const s = await waitFor(ENDPOINTS, 30_000);
      bursts.push({ lastMs: s.lastAt - t });
      burstLags.push(...s.lags);
      await receiver.stats(true);
      await sleep(500);
    }
    report.fanOut = {
      lastDeliveryMs: bursts.map((b) => b.lastMs),
      lag: lagSummary(burstLags),
    };

    // 2. and 4. A steady stream of events to one owner's endpoints.
    const stream = async (owner: string, expected: number) => {
      await receiver.stats(true);
      const total = RATE * SECONDS;
      const start = Date.now();
      for (let i = 0; i < total; i++) {
        const due = start + (i * 1000) / RATE;
        const wait = due - Date.now();
        if (wait > 0) await sleep(wait);
        void publish(owner).catch((error: unknown) => logger.error({ err: error }, 'publish'));
      }
      const s = await waitFor(total * expected, 120_000);
      const seconds = (s.lastAt - start) / 1000;
      return {
        events: total,
        deliveriesExpected: total * expected,
        delivered: s.received,
        duplicates: s.duplicates,
        seconds,
        deliveriesPerSecond: s.received / seconds,
        lag: lagSummary(s.lags),
        hungRequests: s.hungRequests,
      };
    };
    report.steady = await stream(owners[0] ?? '', ENDPOINTS);

    // 3. A backlog: 200 events at once.
    await receiver.stats(true);
    const t3 = Date.now();
    await Promise.all(Array.from({ length: BACKLOG_EVENTS }, () => publish(owners[0] ?? '')));
    const s3 = await waitFor(BACKLOG_EVENTS * ENDPOINTS, 180_000);
    const backlogSeconds = (s3.lastAt - t3) / 1000;
    report.backlog = {
      events: BACKLOG_EVENTS,
      delivered: s3.received,
      seconds: backlogSeconds,
      deliveriesPerSecond: s3.received / backlogSeconds,
      lag: lagSummary(s3.lags),
    };

    // 4. 10 % of the endpoints hang.
    report.steadyWithHanging = await stream(owners[1] ?? '', ENDPOINTS - HANGING);
    report.loadAverageAtEnd = loadavg()[0];

    const steady = report.steady as Awaited<ReturnType<typeof stream>>;
    const hanging = report.steadyWithHanging as Awaited<ReturnType<typeof stream>>;
    const backlog = report.backlog as {
      deliveriesPerSecond: number;
      seconds: number;
      lag: { p99Ms: number };
    };
    const fanOut = report.fanOut as {
      lastDeliveryMs: number[];
      lag: ReturnType<typeof lagSummary>;
    };
    const met = (ok: boolean) => (ok ? '(met)' : '(missed)');
    process.stdout.write(
      [
        `\n## Webhooks (${process.version}, ${String(cpus().length)} cores, ${String(ENDPOINTS)} endpoints, ${String(RATE)} events/s for ${String(SECONDS)} s)\n`,
        '| Measurement | Figure | Target |',
        '| --- | ---: | ---: |',
        `| fan-out of one event to 100 endpoints: last delivery after (5 runs) | ${fanOut.lastDeliveryMs.map(fmt).join(', ')} ms | |`,
        `| fan-out lag p50 / p99 | ${fmt(fanOut.lag.p50Ms)} / ${fmt(fanOut.lag.p99Ms)} ms | |`,
        `| steady stream: deliveries/s end to end (${fmt(steady.delivered)} of ${fmt(steady.deliveriesExpected)}) | ${fmt(steady.deliveriesPerSecond)} | ≥ ${fmt(THROUGHPUT_TARGET)} ${met(steady.deliveriesPerSecond >= THROUGHPUT_TARGET && steady.delivered >= steady.deliveriesExpected)} |`,
        `| steady stream: lag p50 / p99 / max | ${fmt(steady.lag.p50Ms)} / ${fmt(steady.lag.p99Ms)} / ${fmt(steady.lag.maxMs)} ms | p99 ≤ ${fmt(LAG_TARGET_MS)} ${met(steady.lag.p99Ms <= LAG_TARGET_MS)} |`,
        `| backlog of ${fmt(BACKLOG_EVENTS * ENDPOINTS)} deliveries: drained in | ${backlog.seconds.toFixed(1)} s (${fmt(backlog.deliveriesPerSecond)}/s) | |`,
        `| 10 % hanging: healthy deliveries/s (${fmt(hanging.delivered)} of ${fmt(hanging.deliveriesExpected)}) | ${fmt(hanging.deliveriesPerSecond)} | |`,
        `| 10 % hanging: healthy lag p50 / p99 / max | ${fmt(hanging.lag.p50Ms)} / ${fmt(hanging.lag.p99Ms)} / ${fmt(hanging.lag.maxMs)} ms | p99 ≤ ${fmt(LAG_TARGET_MS)} ${met(hanging.lag.p99Ms <= LAG_TARGET_MS)} |`,
        `| duplicates seen by receivers | ${String(steady.duplicates + hanging.duplicates)} | 0 |`,
        '',
      ].join('\n'),
    );
    const dir = new URL('./results/', import.meta.url);
    await mkdir(dir, { recursive: true });
    const slim = JSON.parse(JSON.stringify(report)) as Record<string, unknown>;
    await writeFile(new URL('webhooks.json', dir), `${JSON.stringify(slim, null, 2)}\n`);
  } finally {
    receiver.stop();
    // The hanging receivers' attempts would hold the drain for their timeout: end them now.
    webhooksRuntime(platform).deliverer.abort();
    await stopWebhooks(platform).catch(() => undefined);
    await platform.close();
    await database.close();
    await admin(`drop database if exists ${DATABASE} with (force)`);
  }
}
