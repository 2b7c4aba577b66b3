/**
 * The processes the API benchmark (`api.ts`) runs besides its bare server: Groundwork's `serve`
 * command itself (`node src/main.ts serve`, what `npm run serve` starts), in production mode, one
 * process per core, each on its own port; and, unless `BENCH_REDIS_URL` names one, a Redis server
 * of its own, so that its command counters see Groundwork's commands and nothing else.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const HOST = '127.0.0.1';

/** A free TCP port on the loopback (bound, then released for the child to take). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, HOST);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

let clockTicks: number | undefined;
/** CPU time (user and system) of a process of this machine so far, in microseconds. */
export function processCpuMicros(pid: number): number {
  clockTicks ??= (() => {
    try {
      return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      return 100;
    }
  })();
  const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces), from its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1e6) / clockTicks;
}

/** Keeps the last characters a child wrote to stderr, to say why it stopped. */
function tail(child: ChildProcess): () => string {
  let text = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    text = (text + chunk.toString('utf8')).slice(-4_000);
  });
  return () => text;
}

/** Every child started here and still running: killed if the bench itself dies first. */
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});
function track(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
}

/** One `serve` process: `node src/main.ts serve` with the given environment and nothing else. */
export class ServeProcess {
  readonly port: number;
  readonly #child: ChildProcess;
  readonly #exited: Promise<unknown>;
  readonly #stderr: () => string;

  private constructor(port: number, child: ChildProcess, stderr: () => string) {
    this.port = port;
    this.#child = child;
    this.#exited = once(child, 'exit');
    this.#stderr = stderr;
  }

  /**
   * Starts it and waits for `/health/ready` to answer 200. Its JSON log lines (stdout) go to
   * /dev/null, as the other benchmarks' servers write theirs: every request still pays for its line.
   */
  static async start(env: Record<string, string>, timeoutMs = 60_000): Promise<ServeProcess> {
    const port = await freePort();
    const child = spawn(process.execPath, ['src/main.ts', 'serve'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...env, PORT: String(port) },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    track(child);
    const server = new ServeProcess(port, child, tail(child));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!server.running)
        throw new Error(`serve exited before it was ready:\n${server.#stderr()}`);
      try {
        const res = await fetch(`http://${HOST}:${String(port)}/health/ready`);
        await res.arrayBuffer();
        if (res.status === 200) return server;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        await server.stop();
        throw new Error(`serve was not ready within ${String(timeoutMs)} ms:\n${server.#stderr()}`);
      }
      await sleep(200);
    }
  }

  get pid(): number {
    return this.#child.pid ?? 0;
  }

  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  cpuMicros(): number {
    return processCpuMicros(this.pid);
  }

  /** SIGTERM (its graceful shutdown), then SIGKILL after 20 s. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 20_000);
    await this.#exited;
    clearTimeout(timer);
  }
}

/** The Redis the servers use: started here (`redis-server`, no persistence) or the given one. */
export interface BenchRedis {
  url: string;
  /** Whether only the benchmark's processes talk to it (a server of its own). */
  private: boolean;
  stop(): Promise<void>;
}

export async function startRedis(): Promise<BenchRedis> {
  const given = process.env.BENCH_REDIS_URL;
  if (given !== undefined && given !== '')
    return { url: given, private: false, stop: () => Promise.resolve() };
  const port = await freePort();
  const binary = process.env.BENCH_REDIS_SERVER ?? 'redis-server';
  const child = spawn(
    binary,
    ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  track(child);
  const stderr = tail(child);
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (error) =>
      reject(
        new Error(
          `could not start ${binary} (${error.message}): install Redis or set BENCH_REDIS_URL`,
        ),
      ),
    );
    child.once('exit', (code) =>
      reject(new Error(`${binary} exited (${String(code)}): ${stderr()}`)),
    );
  });
  failed.catch(() => undefined);
  const exited = once(child, 'exit');
  const url = `redis://${HOST}:${String(port)}/0`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0 });
    client.on('error', () => undefined);
    const ok = await Promise.race([
      client.connect().then(
        () => client.ping().then(() => true),
        () => false,
      ),
      failed,
    ]).finally(() => client.disconnect());
    if (ok) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${binary} did not answer within 10 s: ${stderr()}`);
    }
    await sleep(100);
  }
  return {
    url,
    private: true,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Commands run per command name (`INFO commandstats`), the caller's own `INFO` left out. */
export async function redisCommands(client: Redis): Promise<Map<string, number>> {
  const text = await client.info('commandstats');
  const calls = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (match && match[1] !== 'info') calls.set(match[1] as string, Number(match[2]));
  }
  return calls;
}
