// Helpers for the chaos suite (test/chaos/*.chaos.ts): real processes of our own server, and
// private PostgreSQL and Redis servers the tests may stop, freeze and restart. Never the shared
// servers on 5432 and 6379. Everything started here is stopped by `t.after`, even on failure.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { TEST_JWT_PRIVATE_KEY } from './app.ts';
import { freePort, get, isAlive, parseLogs, type LogLine } from './process.ts';
import { PrivateRedis } from './redis.ts';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));

export interface ServerProcess {
  child: ChildProcess;
  pid: number;
  port: number;
  stdout(): string;
  logs(): LogLine[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

export interface StartOptions {
  role: 'serve' | 'worker' | 'all';
  env: Record<string, string>;
  /** Absolute paths of preload modules (`--import`). */
  preload?: string[];
  /** A file descriptor for stdout instead of a pipe (the disk-full scenario). */
  stdoutFd?: number;
  /** Wait for `/health/ready` 200 (default) or only `/health/live`. */
  waitFor?: 'ready' | 'live';
  startTimeoutMs?: number;
  /** Listen on this port (a process restarted behind a proxy); default: a free one. */
  port?: number;
}

/** Starts `node src/main.ts <role>` on a free port and waits until it answers; killed in `t.after`. */
export async function startServer(t: TestContext, options: StartOptions): Promise<ServerProcess> {
  const port = options.port ?? (await freePort());
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    APP_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'info',
    ARGON2_MEMORY_KIB: '64',
    ARGON2_TIME_COST: '1',
    AUTH_JWT_PRIVATE_KEY: TEST_JWT_PRIVATE_KEY,
    ...options.env,
  };
  delete env.NODE_TEST_CONTEXT; // node --test marks its children; the server is not one
  const args = [
    ...(options.preload ?? []).flatMap((p) => ['--import', p]),
    'src/main.ts',
    options.role,
  ];
  const child = spawn(process.execPath, args, {
    cwd: root,
    env,
    stdio: ['ignore', options.stdoutFd ?? 'pipe', 'pipe'],
  });
  let stdout = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  const started = Date.now();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>(
    (resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() - started })),
  );
  t.after(async () => {
    if (child.pid !== undefined && isAlive(child.pid)) {
      process.kill(child.pid, 'SIGCONT');
      child.kill('SIGKILL');
      await exited;
    }
  });
  const path = options.waitFor === 'live' ? '/health/live' : '/health/ready';
  const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      assert.fail(`the ${options.role} process exited during start\n${stdout}`);
    if (Date.now() > deadline) assert.fail(`${options.role} not ${path} in time\n${stdout}`);
    const res = await get(port, path, 1_000).catch(() => null);
    if (res?.status === 200) break;
    await sleep(100);
  }
  return {
    child,
    pid: child.pid as number,
    port,
    stdout: () => stdout,
    logs: () => parseLogs(stdout),
    exited,
  };
}

/** Polls `probe` every `everyMs` until it returns true; resolves with the ms it took, or fails. */
export async function waitFor(
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs: number,
  everyMs = 100,
): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await probe().catch(() => false)) return Date.now() - started;
    if (Date.now() - started > timeoutMs) assert.fail(`${what}: not within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

const PG_BIN = '/usr/lib/postgresql/15/bin';

/**
 * A private PostgreSQL cluster in a temporary directory owned by the OS user `postgres`, on a
 * free port (Debian's initdb and pg_ctl, run as that user). Removed in `t.after`.
 */
export class PrivatePostgres {
  readonly port: number;
  readonly dir: string;
  private constructor(port: number, dir: string) {
    this.port = port;
    this.dir = dir;
  }

  /** Whether this machine can run one (Debian's PostgreSQL 15 and the `postgres` user). */
  static async available(): Promise<string | undefined> {
    try {
      await run('runuser', ['-u', 'postgres', '--', `${PG_BIN}/pg_ctl`, '--version']);
      return undefined;
    } catch (error) {
      return `no private PostgreSQL here (${PG_BIN}/pg_ctl as postgres): ${String(error)}`;
    }
  }

  static async create(t: TestContext): Promise<PrivatePostgres> {
    const dir = mkdtempSync(join(tmpdir(), 'gw-chaos-pg-'));
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
    const server = new PrivatePostgres(await freePort(), dir);
    t.after(async () => {
      await server.ctl(['stop', '-m', 'immediate', '-w']).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    });
    await run('runuser', [
      '-u',
      'postgres',
      '--',
      `${PG_BIN}/initdb`,
      '-D',
      join(dir, 'data'),
      '-A',
      'trust',
      '-U',
      'postgres',
      '--no-sync',
    ]);
    await server.start();
    const client = new pg.Client(server.url('postgres'));
    await client.connect();
    await client.query('create database chaos');
    await client.end();
    return server;
  }

  url(database = 'chaos'): string {
    return `postgres://postgres@127.0.0.1:${String(this.port)}/${database}`;
  }

  private ctl(args: string[]) {
    return run('runuser', [
      '-u',
      'postgres',
      '--',
      `${PG_BIN}/pg_ctl`,
      '-D',
      join(this.dir, 'data'),
      ...args,
    ]);
  }

  async start(): Promise<void> {
    const options = `-p ${String(this.port)} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60`;
    await this.ctl(['start', '-w', '-t', '30', '-l', join(this.dir, 'log'), '-o', options]);
  }

  /** A fast shutdown: open sessions are ended, the server stops. */
  async stop(): Promise<void> {
    await this.ctl(['stop', '-m', 'fast', '-w']);
  }

  /** Runs SQL on the cluster's `chaos` database with a client of its own. */
  async query<T extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values: unknown[] = [],
  ): Promise<pg.QueryResult<T>> {
    const client = new pg.Client(this.url());
    await client.connect();
    try {
      return await client.query<T>(text, values);
    } finally {
      await client.end();
    }
  }
}

/** A private redis-server for this test (never the shared one), stopped after it. */
export async function startPrivateRedis(t: TestContext): Promise<PrivateRedis> {
  const redis = await PrivateRedis.create();
  t.after(() => redis.stop());
  await redis.start();
  return redis;
}
