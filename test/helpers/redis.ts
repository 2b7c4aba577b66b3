import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './process.ts';

/** The shared test Redis (CI always runs one; a bare machine may not). */
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0';

/** True when something answers PING at `url` within a second. */
export async function redisAnswers(url = TEST_REDIS_URL): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port || 6379) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => done(chunk.toString().startsWith('+PONG')));
  });
}

/** `{ skip }` for a suite that needs the shared Redis: skipped (with the reason) when none answers. */
export async function needsRedis(): Promise<{ skip?: string }> {
  return (await redisAnswers())
    ? {}
    : { skip: `Redis not answering at ${TEST_REDIS_URL} (CI always runs one)` };
}

/** A private `redis-server` on a free port, for tests that stop and restart Redis. */
export class PrivateRedis {
  #child: ChildProcess | null = null;
  readonly port: number;
  private constructor(port: number) {
    this.port = port;
  }
  static async create(): Promise<PrivateRedis> {
    return new PrivateRedis(await freePort());
  }
  get url(): string {
    return `redis://127.0.0.1:${String(this.port)}/0`;
  }
  async start(): Promise<void> {
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    this.#child = child;
    for (let i = 0; i < 100; i++) {
      if (await redisAnswers(this.url)) return;
      await sleep(50);
    }
    throw new Error(`redis-server on ${String(this.port)} did not start`);
  }
  /**
   * Freezes the server (SIGSTOP): connections stay open and nothing is answered, as with a hung
   * host. Only ever this private server: never the shared one.
   */
  freeze(): void {
    if (!this.#child || this.#child.exitCode !== null) throw new Error('redis-server not running');
    this.#child.kill('SIGSTOP');
  }
  /** Resumes a frozen server (SIGCONT): it answers what it was sent meanwhile. */
  thaw(): void {
    this.#child?.kill('SIGCONT');
  }
  /** Kills the server (a frozen one too: SIGKILL needs no resume). */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null) return;
    this.#child = null;
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
}
