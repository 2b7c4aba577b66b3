/**
 * One server under test, run as a child of `http.ts` so that the load generator never shares
 * its process. Listens on a free port and sends `{ port }` to the parent over IPC, then answers
 * each message with `{ cpuMicros }`, its CPU time so far.
 */
import Fastify from 'fastify';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildApp, enabledModules, loadAppConfig } from '../src/app.ts';
import { createPlatform } from '../src/platform/runtime/index.ts';
import { defineApp } from '../src/platform/modules/index.ts';
import { createLogDestination, startTracing } from '../src/platform/observability/index.ts';
import {
  HEALTH,
  HEALTH_PATH,
  HealthSchema,
  ITEMS,
  ITEMS_PATH,
  ItemsSchema,
  SERVER_KINDS,
  type ServerKind,
} from './http-data.ts';

const HOST = '127.0.0.1';

const BODIES = new Map<string, unknown>([
  [HEALTH_PATH, HEALTH],
  [ITEMS_PATH, ITEMS],
]);

async function nodeHttp(): Promise<number> {
  const server = createServer((req, res) => {
    const body = req.method === 'GET' ? BODIES.get(req.url ?? '') : undefined;
    if (body === undefined) {
      res.writeHead(404).end();
      return;
    }
    const json = JSON.stringify(body);
    res.writeHead(200, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(json),
    });
    res.end(json);
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  return (server.address() as AddressInfo).port;
}

async function bareFastify(): Promise<number> {
  const app = Fastify();
  app.get(HEALTH_PATH, { schema: { response: { 200: HealthSchema } } }, () =>
    Promise.resolve(HEALTH),
  );
  app.get(ITEMS_PATH, { schema: { response: { 200: ItemsSchema } } }, () => Promise.resolve(ITEMS));
  await app.listen({ host: HOST, port: 0 });
  return (app.server.address() as AddressInfo).port;
}

const benchApp = defineApp({
  name: 'bench',
  description: 'Benchmark fixture: a 20-item JSON list.',
  routes: (app) => {
    app.get('/bench/items', { schema: { tags: ['bench'], response: { 200: ItemsSchema } } }, () =>
      Promise.resolve(ITEMS),
    );
    return Promise.resolve();
  },
});

async function groundwork(): Promise<number> {
  const config = loadAppConfig({
    APP_ENV: 'test',
    LOG_LEVEL: 'info',
    HOST,
    PORT: '0',
    // Rate limits stay on (their cost is part of the stack), with a limit that the load from one
    // IP never reaches, so every response is the 200 being measured.
    RATE_LIMIT_ANONYMOUS_PER_MIN: '100000000',
    // Settings to try in an experiment (`BENCH_CONFIG='{"LOG_LEVEL":"warn"}'`); none by default.
    ...(JSON.parse(process.env.BENCH_CONFIG ?? '{}') as Record<string, string>),
  });
  // The production logger's destination, writing to /dev/null: every request pays for its line.
  const logDestination = createLogDestination('/dev/null');
  // Nothing opened: the routes measured touch neither the database nor the queue.
  const platform = await createPlatform(config, {
    logDestination,
    modules: enabledModules(config, [benchApp]),
    connect: false,
  });
  const app = await buildApp(config, { platform, apps: [benchApp] });
  await app.listen({ host: config.server.host, port: config.server.port });
  return (app.server.address() as AddressInfo).port;
}

/**
 * Groundwork with tracing on, exporting every span (OTLP over HTTP, protobuf: the default) to the
 * sink receiver whose URL `http.ts` passes as the second argument. Started the way `main.ts`
 * starts it: before the logger and the app.
 */
async function tracedGroundwork(): Promise<number> {
  const sink = process.argv[3];
  if (sink === undefined) throw new Error('groundwork+tracing needs the sink URL');
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = sink;
  process.env.OTEL_SERVICE_NAME = 'groundwork-bench';
  if ((await startTracing()) === null) throw new Error('tracing did not start');
  return groundwork();
}

/** The traced variant: not in `SERVER_KINDS` (shared with other benchmarks); http.ts names it too. */
const TRACED = 'groundwork+tracing';
type Kind = ServerKind | typeof TRACED;

const start: Record<Kind, () => Promise<number>> = {
  'node:http': nodeHttp,
  fastify: bareFastify,
  groundwork,
  [TRACED]: tracedGroundwork,
};

const kind = process.argv[2] as Kind;
if (!Object.hasOwn(start, kind) || process.send === undefined) {
  process.stderr.write(
    `usage: forked by bench/http.ts with one of ${[...SERVER_KINDS, TRACED].join(', ')}\n`,
  );
  process.exit(64);
}
const port = await start[kind]();
process.on('message', () => {
  const { user, system } = process.cpuUsage();
  process.send?.({ cpuMicros: user + system });
});
process.send({ port });
// Exit on SIGTERM through process.exit, so `node --cpu-prof` writes its profile.
process.on('SIGTERM', () => process.exit(0));
