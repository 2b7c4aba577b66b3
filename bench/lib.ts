// Shared by the benchmarks: server children and the load generator, so every benchmark measures alike.
import autocannon from 'autocannon';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import pg from 'pg';
import type { SteadySettings } from './steady-client.ts';

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

/**
 * The share of the raw baseline's saturation throughput offered as a steady load when a p99 is
 * measured (`steadyLatency`): a server at about half its capacity, as a p99 target means it.
 */
export const STEADY_SHARE = 0.5;
/**
 * Seconds at the steady rate before `steadyLatency` measures (`BENCH_STEADY_WARMUP`, 10). Besides
 * opening the connections, they let a server collect what its previous work left behind: on the
 * public-data page, with a 2 s warm-up, Groundwork's p99 was 74.1 ms right after the
 * 1,000,000-row import and 46.8 ms right after a start, and 22.2 and 16.8 ms on the same servers
 * a minute later (their first mark-compacts, and the promotion of boot-time objects).
 */
export const STEADY_WARMUP_SECONDS = Number(process.env.BENCH_STEADY_WARMUP ?? 10);

/** What `steadyLatency` measures: the offered and answered rates, and latency in ms. */
export interface SteadyResult {
  offered: number;
  rps: number;
  p50: number;
  p99: number;
  max: number;
}

/**
 * Latency under a steady offered load: `rate` requests a second, each sent at its scheduled time
 * (an open loop: one every 1/rate s, whatever the answers before it), over at most CONNECTIONS
 * keep-alive connections, for `duration` seconds after STEADY_WARMUP_SECONDS at the same rate on
 * the same connections (not measured: the connections open and the server warms up). Each latency
 * runs from the request's scheduled time to its answer's end, so time spent waiting for a free
 * connection counts (no coordinated omission). At saturation (`load`) a closed-loop client's
 * latency is its own queue (Little's law: connections ÷ throughput, 50 ÷ 2,000 req/s = 25 ms on
 * average for any server), so a p99 target is checked below saturation, at the same offered rate
 * for a server and its baseline.
 *
 * Written here rather than with autocannon's `overallRate`: that sends each second's quota in a
 * burst at the start of the second, and its coordinated-omission correction assumes one request
 * a millisecond, which adds made-up samples to every answer slower than 1 ms.
 * Any error or other status fails the benchmark. The client runs in a process of its own
 * (`steady-client.ts`).
 */
export async function steadyLatency(
  url: string,
  rate: number,
  duration: number,
  options: { headers?: Record<string, string>; status?: number } = {},
): Promise<SteadyResult> {
  // A fresh process of its own: in the benchmark's process the client's own collections (its
  // heap holds every earlier load's results) landed in both servers' tails alike.
  const child = fork(new URL('./steady-client.ts', import.meta.url), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = once(child, 'exit');
  const settings = {
    connections: CONNECTIONS,
    pipelining: PIPELINING,
    warmupSeconds: STEADY_WARMUP_SECONDS,
  } satisfies SteadySettings;
  child.send({ url, rate, duration, settings, options });
  const [message] = (await Promise.race([
    once(child, 'message'),
    exited.then(([code]) => {
      throw new Error(`steady client exited (${String(code)}) before answering`);
    }),
  ])) as [{ result?: SteadyResult; error?: string }];
  await exited;
  if (message.error !== undefined) throw new Error(message.error);
  return message.result as SteadyResult;
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
