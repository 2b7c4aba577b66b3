/**
 * One list server under test, run as a child of `db.ts` (arguments: kind, database URL) so that
 * the load generator never shares its process. Listens on a free port and sends `{ port }` to the
 * parent over IPC, then answers each message with `{ cpuMicros }`, its CPU time so far.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { buildApp, enabledModules, loadAppConfig } from '../src/app.ts';
import { createPlatform } from '../src/platform/runtime/index.ts';
import { allMigrations } from '../src/migrations/index.ts';
import {
  listQuerySchema,
  migrateToLatest,
  pageSchema,
  paginate,
  parseListQuery,
  tablesOf,
} from '../src/platform/db/index.ts';
import { defineApp } from '../src/platform/modules/index.ts';
import {
  createLogDestination,
  createLogger,
  createMetricsRegistry,
} from '../src/platform/observability/index.ts';
import {
  APPLICATION_NAME,
  FIRST_PAGE_SQL,
  LIST_PATH,
  PAGE_SIZE,
  POOL_SIZE,
  SERVER_KINDS,
  WidgetSchema,
  widgetSpec,
  type BenchDB,
  type ServerKind,
} from './db-data.ts';

const HOST = '127.0.0.1';

interface FirstPageRow {
  id: string;
  name: string;
  status: string;
  price: number;
  createdAt: Date;
  key: string;
}

/** node:http and a `pg` pool: the hand-written query, `JSON.stringify`, an unsigned cursor. */
async function bare(url: string): Promise<number> {
  const pool = new pg.Pool({
    connectionString: url,
    max: POOL_SIZE,
    application_name: APPLICATION_NAME.bare,
  });
  pool.on('error', () => undefined);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' || req.url !== LIST_PATH) {
      res.writeHead(404).end();
      return;
    }
    try {
      const { rows } = await pool.query<FirstPageRow>(FIRST_PAGE_SQL, [PAGE_SIZE + 1]);
      const hasMore = rows.length > PAGE_SIZE;
      const page = rows.slice(0, PAGE_SIZE);
      const last = page.at(-1);
      const items = page.map(({ id, name, status, price, createdAt }) => ({
        id,
        name,
        status,
        price,
        createdAt,
      }));
      const nextCursor =
        hasMore && last
          ? Buffer.from(JSON.stringify([last.key, last.id])).toString('base64url')
          : null;
      const json = JSON.stringify({ items, page: { limit: PAGE_SIZE, nextCursor, hasMore } });
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

const benchApp = defineApp({
  name: 'bench',
  description: 'Benchmark fixture: a paginated listing of 1,000,000 widgets.',
  routes: async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const { config, database } = fastify.platform;
    const db = tablesOf<BenchDB>(database.db);
    // Defined once for the route: the page statements compile once per listing shape.
    const base = () =>
      db.selectFrom('widgets').select(['id', 'name', 'status', 'price', 'created_at as createdAt']);
    const options = {
      secret: config.secrets.appSecret,
      estimateAbove: config.database.estimateAbove,
    };
    app.get(
      '/bench/widgets',
      {
        schema: {
          tags: ['bench'],
          querystring: listQuerySchema(widgetSpec),
          response: { 200: pageSchema(WidgetSchema) },
        },
      },
      async (request) => {
        const list = parseListQuery(widgetSpec, request.query);
        return paginate(db, widgetSpec, list, base, options);
      },
    );
  },
});

/** The full stack: `buildApp` with an open database, every request logged to /dev/null. */
async function groundwork(url: string): Promise<number> {
  const config = loadAppConfig({
    APP_ENV: 'test',
    LOG_LEVEL: 'info',
    HOST,
    PORT: '0',
    DATABASE_URL: url,
    DATABASE_POOL_MAX: String(POOL_SIZE),
    // Rate limits stay on, with a limit that the load from one IP never reaches.
    RATE_LIMIT_ANONYMOUS_PER_MIN: '100000000',
  });
  // The production logger's destination, writing to /dev/null: every request pays for its line.
  const logger = createLogger({
    level: config.observability.logLevel,
    destination: createLogDestination('/dev/null'),
    base: { service: 'groundwork' },
  });
  const metrics = createMetricsRegistry();
  const platform = await createPlatform(config, {
    logger,
    metrics,
    modules: enabledModules(config, [benchApp]),
    role: 'bench',
  });
  // The platform's tables, as a deployment has them (the app grants its modules' default
  // permissions when it is ready); the benchmark's widgets table is the seed's.
  await migrateToLatest(platform.database.db, allMigrations([]));
  const app = await buildApp(config, { platform, apps: [benchApp] });
  await app.listen({ host: config.server.host, port: config.server.port });
  return (app.server.address() as AddressInfo).port;
}

const start: Record<ServerKind, (url: string) => Promise<number>> = { bare, groundwork };

const [kind, url] = process.argv.slice(2) as [ServerKind, string | undefined];
if (!Object.hasOwn(start, kind) || url === undefined || process.send === undefined) {
  process.stderr.write(
    `usage: forked by bench/db.ts with one of ${SERVER_KINDS.join(', ')} and a database URL\n`,
  );
  process.exit(64);
}
const port = await start[kind](url);
process.on('message', () => {
  const { user, system } = process.cpuUsage();
  process.send?.({ cpuMicros: user + system });
});
process.send({ port });
