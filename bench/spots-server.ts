/**
 * One spots server under test, run as a child of `spots.ts` (arguments: kind, database URL), so
 * that the load generator never shares its process. Sends `{ port }` once listening, then
 * answers each message with `{ cpuMicros }`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { spotsApp } from '../src/apps/spots/index.ts';
import { buildApp, enabledModules, knownModules } from '../src/app.ts';
import { loadConfig } from '../src/platform/config/index.ts';
import {
  createLogDestination,
  createLogger,
  createMetricsRegistry,
} from '../src/platform/observability/index.ts';
import { createPlatform } from '../src/platform/runtime/index.ts';
import {
  APPLICATION_NAME,
  GEO,
  PAGE_SIZE,
  POOL_SIZE,
  QUERIES,
  RAW_SQL,
  SERVER_KINDS,
  type QueryName,
  type ServerKind,
} from './spots-data.ts';

const HOST = '127.0.0.1';

interface RawRow {
  id: string;
  ownerId: string;
  name: string;
  description: string;
  address: string | null;
  category: string;
  tags: string[];
  language: string;
  lat: number;
  lng: number;
  coverPictureId: string | null;
  status: string;
  favouriteCount: number;
  createdAt: Date;
  updatedAt: Date;
  distanceM?: number;
}

async function raw(url: string): Promise<number> {
  const pool = new pg.Pool({
    connectionString: url,
    max: POOL_SIZE,
    application_name: APPLICATION_NAME.raw,
  });
  pool.on('error', () => undefined);
  const routes = new Map<string, QueryName>(
    (Object.keys(QUERIES) as QueryName[]).map((name) => [QUERIES[name].raw, name]),
  );
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const name = req.method === 'GET' ? routes.get(req.url ?? '') : undefined;
    if (name === undefined) {
      res.writeHead(404).end();
      return;
    }
    try {
      // The app's statements in order until the page (plus one row) is full.
      const rows: RawRow[] = [];
      for (const statement of RAW_SQL[name]) {
        if (rows.length > PAGE_SIZE) break;
        const result = await pool.query<RawRow>({
          text: statement.text,
          values: [...statement.values, PAGE_SIZE + 1 - rows.length],
        });
        rows.push(...result.rows);
      }
      const hasMore = rows.length > PAGE_SIZE;
      // The app's item shape, field for field (the seed has no pictures: no cover).
      const items = rows.slice(0, PAGE_SIZE).map((r) => ({
        id: r.id,
        ownerId: r.ownerId,
        name: r.name,
        description: r.description,
        address: r.address,
        category: r.category,
        tags: r.tags,
        language: r.language,
        location: { lat: r.lat, lng: r.lng },
        ...(r.distanceM === undefined ? {} : { distanceM: Math.round(r.distanceM * 10) / 10 }),
        favouriteCount: r.favouriteCount,
        coverPictureId: r.coverPictureId,
        cover: null,
        status: r.status,
        createdAt: r.createdAt.toISOString(),
        updatedAt: r.updatedAt.toISOString(),
      }));
      const json = JSON.stringify({ items, page: { limit: PAGE_SIZE, hasMore } });
      res.writeHead(200, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(json),
      });
      res.end(json);
    } catch {
      res.writeHead(500).end();
    }
  }
  const server = createServer((req, res) => {
    void handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  return (server.address() as AddressInfo).port;
}

/** The whole stack: the spots app on `buildApp`, every request logged to /dev/null. */
async function groundwork(url: string): Promise<number> {
  const config = loadConfig(
    {
      APP_ENV: 'test',
      LOG_LEVEL: 'info',
      HOST,
      PORT: '0',
      DATABASE_URL: url,
      DATABASE_POOL_MAX: String(POOL_SIZE),
      // Rate limits stay on, with a limit the load from one IP never reaches.
      RATE_LIMIT_ANONYMOUS_PER_MIN: '100000000',
      SPOTS_GEO: GEO,
    },
    { modules: [...knownModules(), spotsApp] },
  );
  const logger = createLogger({
    level: config.observability.logLevel,
    destination: createLogDestination('/dev/null'),
    base: { service: 'groundwork' },
  });
  const platform = await createPlatform(config, {
    logger,
    metrics: createMetricsRegistry(),
    modules: enabledModules(config, [spotsApp]),
    role: 'bench-spots',
  });
  const app = await buildApp(config, { platform, apps: [spotsApp] });
  await app.listen({ host: config.server.host, port: config.server.port });
  return (app.server.address() as AddressInfo).port;
}

const start: Record<ServerKind, (url: string) => Promise<number>> = { raw, groundwork };

const [kind, url] = process.argv.slice(2) as [ServerKind, string | undefined];
if (!Object.hasOwn(start, kind) || url === undefined || process.send === undefined) {
  process.stderr.write(
    `usage: forked by bench/spots.ts with one of ${SERVER_KINDS.join(', ')} and a database URL\n`,
  );
  process.exit(64);
}
const port = await start[kind](url);
process.on('message', () => {
  const { user, system } = process.cpuUsage();
  process.send?.({ cpuMicros: user + system });
});
process.send({ port });
