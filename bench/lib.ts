// Shared by the benchmarks: server children and the load generator, so every benchmark measures alike.
import autocannon from 'autocannon';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import pg from 'pg';

export const CONNECTIONS = 50;
export const PIPELINING = 1;
export const WARMUP_SECONDS = 2;

/** A server under test in its own process (the load generator never shares it). */
export class ServerChild<Kind extends string = string> {
  readonly kind: Kind;
  readonly port: number;
  readonly #child: ChildProcess;
  readonly #exited: Promise<unknown>;

  private constructor(kind: Kind, port: number, child: ChildProcess, exited: Promise<unknown>) {
    this.kind = kind;
    this.port = port;
    this.#child = child;
    this.#exited = exited;
  }

  /** Forks `script` with `args`; it answers `{ port }` once listening and `{ cpuMicros }` to 'cpu'. */
  static async start<K extends string>(
    script: URL,
    kind: K,
    args: string[] = [],
  ): Promise<ServerChild<K>> {
    const child = fork(script, [kind, ...args], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const exited = once(child, 'exit');
    const [message] = (await Promise.race([
      once(child, 'message'),
      exited.then(([code]) => {
        throw new Error(`${kind} server exited (${String(code)}) before listening`);
      }),
    ])) as [{ port: number }];
    return new ServerChild<K>(kind, message.port, child, exited);
  }

  /** The child's CPU time so far (user and system), in microseconds. */
  async cpuMicros(): Promise<number> {
    const reply = once(this.#child, 'message');
    this.#child.send('cpu');
    const [message] = (await reply) as [{ cpuMicros: number }];
    return message.cpuMicros;
  }

  /** The child's whole answer to one message: `cpuMicros` and whatever else its script reports. */
  async report<T extends { cpuMicros: number }>(): Promise<T> {
    const reply = once(this.#child, 'message');
    this.#child.send('cpu');
    const [message] = (await reply) as [T];
    return message;
  }

  /** Whether the child is still running (it may have crashed under load). */
  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    this.#child.kill('SIGTERM');
    await this.#exited;
  }
}

/** Loads `url` for `duration` seconds; any error or non-2xx fails the benchmark. */
export async function load(url: string, duration: number): Promise<autocannon.Result> {
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    pipelining: PIPELINING,
    duration,
  });
  if (result.errors > 0 || result.non2xx > 0) {
    throw new Error(
      `${url}: ${String(result.errors)} errors, ${String(result.non2xx)} non-2xx responses (by status: ${JSON.stringify(result.statusCodeStats)})`,
    );
  }
  return result;
}

/** The PostgreSQL server a benchmark makes its database on (`BENCH_DATABASE_URL`). */
export function serverUrl(): string {
  return process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
}

/** Runs one administrative statement (create or drop a benchmark database) on that server. */
export async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl(), application_name: 'bench:admin' });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
