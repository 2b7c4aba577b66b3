import { Kysely, PostgresDialect, type LogEvent } from 'kysely';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import type { Logger } from 'pino';
import { Gauge, Histogram, type Registry } from 'prom-client';
import type { Config } from '../config/index.ts';
import { startEmbeddedPostgres, type EmbeddedServer } from './embedded.ts';
import { PreparingClient } from './prepared.ts';

/**
 * The database as the platform opens it: one connection pool, no tables typed. Each module (a
 * platform area or an app) declares its own table interface and sees only those tables through
 * `tablesOf<ItsTables>(db)`; another module's tables are reached through that module's exported
 * functions, never by name. There is no global table type to merge into.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface NoTables {}

export type Db = Kysely<NoTables>;

/**
 * The database or a transaction on it, seen through any module's tables: what functions that
 * take the caller's transaction accept (`jobs.send`, `mail.send`, `events.publish`).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyDb = Kysely<any>;

/**
 * The same connection (or transaction) typed with a module's tables. Only the type changes: a
 * transaction stays that transaction, so work done through the view commits or rolls back with it.
 */
export function tablesOf<T>(db: AnyDb): Kysely<T> {
  return db as Kysely<T>;
}

/** An open database: Kysely over one `pg` pool, and the embedded server when there is one. */
export interface Database {
  readonly db: Db;
  readonly pool: pg.Pool;
  /** Where the pool connects (credentials included): for tools such as pg_dump. */
  readonly url: string;
  readonly embedded: boolean;
  /** `select 1` within the signal's deadline: the readiness check. */
  ping(signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

export interface OpenOptions {
  logger: Logger;
  /** Metrics registry for query and pool metrics; none in scripts. */
  metrics?: Registry;
  /** Overrides `config.database.url` (tests point each file at its own database). */
  url?: string;
  /** Tag for `application_name`, e.g. the process role. */
  role?: string;
}

function sslOptions(config: Config['database']): pg.PoolConfig['ssl'] {
  switch (config.ssl) {
    case 'disable':
      return undefined;
    case 'require':
      return { rejectUnauthorized: false };
    case 'verify-full':
      return {
        rejectUnauthorized: true,
        ...(config.sslCaFile ? { ca: readFileSync(config.sslCaFile, 'utf8') } : {}),
      };
  }
}

/** Strips the parameters from a SQL text for logs: only the statement, never the values. */
function oneLine(sql: string): string {
  return sql.replace(/\s+/g, ' ').slice(0, 2_000);
}

type Labels = Readonly<{ operation: string; outcome: 'ok' | 'error' }>;

function instrument(
  options: OpenOptions,
  slowMs: number,
  pool: pg.Pool,
): (event: LogEvent) => void {
  const { logger, metrics } = options;
  const duration = metrics
    ? new Histogram({
        name: 'db_query_duration_seconds',
        help: 'Database query duration',
        labelNames: ['operation', 'outcome'],
        buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
        registers: [metrics],
      })
    : undefined;
  if (metrics) {
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers: [metrics],
        collect() {
          this.set(read());
        },
      });
    gauge('db_pool_connections_total', 'Connections open in the pool', () => pool.totalCount);
    gauge('db_pool_connections_idle', 'Idle connections in the pool', () => pool.idleCount);
    gauge('db_pool_requests_waiting', 'Queries waiting for a connection', () => pool.waitingCount);
    gauge('db_pool_connections_max', 'Connections the pool may open (DATABASE_POOL_MAX)', () => {
      return pool.options.max;
    });
  }
  // Label objects per query kind and outcome, made once: this runs on every query.
  const labelSets = new Map<string, { ok: Labels; error: Labels }>();
  return (event) => {
    const kind = event.query.query.kind;
    let labels = labelSets.get(kind);
    if (!labels) {
      const operation = kind.replace(/Node$/, '').toLowerCase();
      labels = { ok: { operation, outcome: 'ok' }, error: { operation, outcome: 'error' } };
      labelSets.set(kind, labels);
    }
    duration?.observe(
      event.level === 'error' ? labels.error : labels.ok,
      event.queryDurationMillis / 1000,
    );
    if (event.queryDurationMillis >= slowMs) {
      logger.warn(
        { durationMs: Math.round(event.queryDurationMillis), sql: oneLine(event.query.sql) },
        'slow query',
      );
    }
  };
}

/**
 * Opens the database from config: the pool at `DATABASE_URL`, or an embedded server started in
 * `DATA_DIR` when none is set. One code path above the connection either way.
 */
export async function openDatabase(config: Config, options: OpenOptions): Promise<Database> {
  const settings = config.database;
  let embedded: EmbeddedServer | undefined;
  let url = options.url ?? settings.url;
  if (url === null) {
    embedded = await startEmbeddedPostgres(settings.dataDir, options.logger);
    url = embedded.url;
  }
  const pool = new pg.Pool({
    // Sends the statements marked by `executePrepared` (the hot listings) as named prepared
    // statements; every other statement goes out as before (prepared.ts).
    Client: PreparingClient,
    connectionString: url,
    max: settings.poolMax,
    idleTimeoutMillis: settings.idleTimeoutMs,
    connectionTimeoutMillis: settings.connectTimeoutMs,
    application_name: `groundwork${options.role ? `:${options.role}` : ''}`,
    ssl: sslOptions(settings),
    ...(settings.statementTimeoutMs > 0 ? { statement_timeout: settings.statementTimeoutMs } : {}),
  });
  // An idle client losing its connection (server restart, terminated backend) must not crash the
  // process: the pool drops it and makes a new one on the next checkout.
  let closed = false;
  pool.on('error', (error) => {
    if (closed) return;
    options.logger.warn(
      { err: { message: error.message, code: (error as { code?: string }).code } },
      'idle database connection lost',
    );
  });
  // A connection lost while checked out (a backend terminated mid-transaction, the server going
  // down between two statements) makes `pg` emit 'error' on the client as well as failing its
  // query, and the pool listens only to idle clients: without this listener that event is an
  // uncaught exception that takes the process down. The query's own error reaches the caller
  // (a 503), and the pool discards the dead client when it is released.
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
  });

  const db = new Kysely<NoTables>({
    dialect: new PostgresDialect({ pool }),
    log: instrument(options, settings.slowQueryMs, pool),
  });
  return {
    db,
    pool,
    url,
    embedded: embedded !== undefined,
    async ping(signal) {
      const client = await pool.connect().catch((error: unknown) => {
        throw new Error('database unavailable', { cause: error });
      });
      const onAbort = () => client.release(new Error('health check timed out'));
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        await client.query('select 1');
        signal?.removeEventListener('abort', onAbort);
        client.release();
      } catch (error) {
        signal?.removeEventListener('abort', onAbort);
        if (!signal?.aborted) client.release(error as Error);
        // Readiness is public: name the failure, not hosts or driver details.
        throw new Error(signal?.aborted ? 'database check timed out' : 'database unavailable', {
          cause: error,
        });
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await db.destroy();
      await embedded?.stop();
    },
  };
}
