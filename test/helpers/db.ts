import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { pino, type Logger } from 'pino';
import type { Registry } from 'prom-client';
import { allMigrations } from '../../src/migrations/index.ts';
import type { Config } from '../../src/platform/config/index.ts';
import {
  migrateToLatest,
  openDatabase,
  type Database,
  type MigrationSet,
} from '../../src/platform/db/index.ts';
import { testConfig } from './app.ts';

/** The server the tests use (set by the global setup; the machine's default otherwise). */
export function testServerUrl(): string {
  return process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
}

export function urlFor(database: string): string {
  const url = new URL(testServerUrl());
  url.pathname = `/${database}`;
  return url.toString();
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(testServerUrl());
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

function templateName(migrations: MigrationSet): string {
  const hash = createHash('sha256');
  // The sources are hashed too, so an edited migration gets a fresh template.
  for (const [name, migration] of Object.entries(migrations)) {
    hash.update(name).update(JSON.stringify(Object.values(migration).map((fn) => String(fn))));
  }
  return `gw_tpl_${hash.digest('hex').slice(0, 16)}`;
}

/** A migrated template database for this migration set, made once (under an advisory lock) and reused. */
async function ensureTemplate(migrations: MigrationSet): Promise<string> {
  const name = templateName(migrations);
  await admin(async (client) => {
    await client.query('select pg_advisory_lock(hashtext($1))', [name]);
    try {
      const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [
        name,
      ]);
      if (rowCount) return;
      await client.query(`create database "${name}"`);
      const database = await openDatabase(testConfig(), {
        logger: pino({ level: 'silent' }),
        url: urlFor(name),
      });
      try {
        await migrateToLatest(database.db, migrations);
      } finally {
        await database.close();
      }
    } finally {
      await client.query('select pg_advisory_unlock(hashtext($1))', [name]);
    }
  });
  return name;
}

export interface TestDatabase {
  /** Name and URL of this file's own database. */
  name: string;
  url: string;
  /** An open pool on it (closed by `drop`). */
  database: Database;
  drop(): Promise<void>;
}

/**
 * Creates a database for one test file, cloned from the migrated template; `drop()` removes it.
 * `logger` and `metrics` go to `openDatabase` (slow-query lines, query and pool metrics): build the
 * app with the same registry to see them on `/metrics`.
 */
export async function createTestDatabase(
  options: {
    migrations?: MigrationSet;
    migrated?: boolean;
    config?: Config;
    logger?: Logger;
    metrics?: Registry;
  } = {},
): Promise<TestDatabase> {
  const name = `gw_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const template =
    options.migrated === false
      ? 'template1'
      : await ensureTemplate(options.migrations ?? allMigrations([]));
  await admin((client) => client.query(`create database "${name}" template "${template}"`));
  const url = urlFor(name);
  const database = await openDatabase(options.config ?? testConfig(), {
    logger: options.logger ?? pino({ level: 'silent' }),
    ...(options.metrics ? { metrics: options.metrics } : {}),
    url,
  });
  return {
    name,
    url,
    database,
    async drop() {
      await database.close();
      await admin((client) => client.query(`drop database if exists "${name}" with (force)`));
    },
  };
}

/** Runs SQL as a superuser on the test server (for tests that break things on purpose). */
export function adminQuery(text: string, values: unknown[] = []): Promise<pg.QueryResult> {
  return admin((client) => client.query(text, values));
}
