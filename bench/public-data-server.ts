/**
 * One server of the public data benchmark, run as a child of `public-data.ts` (arguments: kind,
 * database URL, storage folder, and for `raw` the page statement as JSON). Listens on a free
 * port, sends `{ port }` over IPC, then answers each message with its CPU time, its RSS and the
 * peak RSS seen since the previous message (sampled every 10 ms).
 */
import Fastify from 'fastify';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { buildApp, enabledModules, knownModules } from '../src/app.ts';
import { publicDataApp } from '../src/apps/public-data/index.ts';
import { loadConfig } from '../src/platform/config/index.ts';
import {
  createLogDestination,
  createLogger,
  createMetricsRegistry,
} from '../src/platform/observability/index.ts';
import { createPlatform } from '../src/platform/runtime/index.ts';

export const PD_KINDS = ['groundwork', 'raw', 'static'] as const;
export type PdKind = (typeof PD_KINDS)[number];
export const PD_POOL_SIZE = 10;
const HOST = '127.0.0.1';

/** The whole stack with the public data app (rate limits on, far above the load). */
async function groundwork(url: string, storageDir: string): Promise<number> {
  const config = loadConfig(
    {
      APP_ENV: 'test',
      LOG_LEVEL: 'info',
      HOST,
      PORT: '0',
      DATABASE_URL: url,
      DATABASE_POOL_MAX: String(PD_POOL_SIZE),
      RATE_LIMIT_ANONYMOUS_PER_MIN: '100000000',
      STORAGE_LOCAL_DIR: storageDir,
      HANDLER_TIMEOUT_MS: '600000',
    },
    { modules: [...knownModules(), publicDataApp] },
  );
  const logger = createLogger({
    level: config.observability.logLevel,
    destination: createLogDestination('/dev/null'),
    base: { service: 'groundwork' },
  });
  const platform = await createPlatform(config, {
    logger,
    metrics: createMetricsRegistry(),
    modules: enabledModules(config, [publicDataApp]),
    role: 'bench',
  });
  const app = await buildApp(config, { platform, apps: [publicDataApp] });
  await app.listen({ host: HOST, port: 0 });
  return (app.server.address() as AddressInfo).port;
}

/** node:http and a `pg` pool running the app's own page statement, rows joined as the app does. */
async function raw(
  url: string,
  statement: { text: string; params: string[]; limit: number },
): Promise<number> {
  const pool = new pg.Pool({ connectionString: url, max: PD_POOL_SIZE });
  pool.on('error', () => undefined);
  const server = createServer((req, res) => {
    pool.query<{ j: string }>(statement.text, statement.params).then(
      ({ rows }) => {
        const page = rows.slice(0, statement.limit);
        const body = `{"items":[${page.map((r) => r.j).join(',')}],"hasMore":${String(rows.length > statement.limit)}}`;
        res.writeHead(200, {
          'content-type': 'application/json; charset=utf-8',
          'content-length': Buffer.byteLength(body),
        });
        res.end(body);
      },
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  return (server.address() as AddressInfo).port;
}

/** Bare Fastify answering 304 to a matching If-None-Match (the floor of a conditional request). */
async function fixed(): Promise<number> {
  const app = Fastify({ logger: false });
  const etag = '"static-etag-0123456789abcdefghij"';
  app.get('/static', (request, reply) => {
    void reply.header('etag', etag).header('cache-control', 'public, max-age=60');
    if (request.headers['if-none-match'] === etag) return reply.code(304).send();
    return reply.send({ ok: true });
  });
  await app.listen({ host: HOST, port: 0 });
  return (app.server.address() as AddressInfo).port;
}

const [kind, url, storageDir, statement] = process.argv.slice(2) as [
  PdKind,
  string,
  string,
  string | undefined,
];
if (!PD_KINDS.includes(kind) || url === undefined || process.send === undefined) {
  process.stderr.write(
    `usage: forked by bench/public-data.ts with one of ${PD_KINDS.join(', ')}\n`,
  );
  process.exit(64);
}
const port =
  kind === 'groundwork'
    ? await groundwork(url, storageDir)
    : kind === 'raw'
      ? await raw(
          url,
          JSON.parse(statement ?? '{}') as { text: string; params: string[]; limit: number },
        )
      : await fixed();
let peak = 0;
setInterval(() => {
  peak = Math.max(peak, process.memoryUsage.rss());
}, 10).unref();
process.on('message', () => {
  const { user, system } = process.cpuUsage();
  const rss = process.memoryUsage.rss();
  process.send?.({ cpuMicros: user + system, rss, peakRss: Math.max(peak, rss) });
  peak = rss;
});
process.send({ port });
