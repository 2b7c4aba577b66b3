import type { FastifyInstance } from 'fastify';
import { once } from 'node:events';
import WebSocket from 'ws';
import { buildApp, enabledModules } from '../../src/app.ts';
import { allMigrations } from '../../src/migrations/index.ts';
import type { Config } from '../../src/platform/config/index.ts';
import type { ProblemBody } from '../../src/platform/http/index.ts';
import type { AnyModule, Platform } from '../../src/platform/modules/index.ts';
import {
  decodeServerProtobuf,
  encodeClientProtobuf,
  JSON_PROTOCOL,
  PROTOBUF_PROTOCOL,
  type ClientFrame,
  type ServerFrame,
} from '../../src/platform/realtime/index.ts';
import { createPlatform } from '../../src/platform/runtime/index.ts';
import { LogCapture, testConfig } from './app.ts';
import { createTestDatabase, type TestDatabase } from './db.ts';

export { JSON_PROTOCOL, PROTOBUF_PROTOCOL };

/** Any server frame with its members optional (tests read what they expect). */
export interface LooseFrame {
  type: string;
  id?: string;
  userId?: string | null;
  channel?: string;
  event?: string;
  data?: unknown;
  offset?: number;
  payload?: unknown;
  problem: ProblemBody;
}

/** A WebSocket client that keeps every frame it receives, decoded. */
export class TestSocket {
  readonly ws: WebSocket;
  readonly frames: ServerFrame[] = [];
  readonly raw: { data: Buffer; binary: boolean }[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  #waiters: (() => void)[] = [];
  readonly protocol: string;

  private constructor(ws: WebSocket, protocol: string) {
    this.ws = ws;
    this.protocol = protocol;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
        this.#wake();
      });
    });
    ws.on('error', () => undefined);
    ws.on('message', (data: Buffer, binary: boolean) => {
      this.raw.push({ data, binary });
      try {
        this.frames.push(
          binary
            ? decodeServerProtobuf(new Uint8Array(data))
            : (JSON.parse(data.toString()) as ServerFrame),
        );
      } catch {
        // kept in `raw`
      }
      this.#wake();
    });
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  /** Opens a socket; rejects with the HTTP status when the upgrade is refused. */
  static open(
    base: string,
    options: { protocols?: string[]; path?: string; headers?: Record<string, string> } = {},
  ): Promise<TestSocket> {
    const protocols = options.protocols ?? [JSON_PROTOCOL];
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}${options.path ?? '/ws'}`, protocols, {
      headers: options.headers,
      maxPayload: 64 * 1024 * 1024,
    });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new TestSocket(ws, ws.protocol)));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () =>
          reject(
            Object.assign(new Error(`upgrade refused: ${res.statusCode}`), {
              status: res.statusCode,
              body,
            }),
          ),
        );
      });
      ws.once('error', reject);
    });
  }

  send(frame: ClientFrame | Record<string, unknown>): void {
    if (this.protocol === PROTOBUF_PROTOCOL)
      this.ws.send(encodeClientProtobuf(frame as ClientFrame));
    else this.ws.send(JSON.stringify(frame));
  }

  /** The first frame (after `from`) of this type, or matching, waiting up to `timeoutMs`. */
  next<T extends ServerFrame['type']>(
    predicate: T,
    timeoutMs?: number,
    from?: number,
  ): Promise<Extract<ServerFrame, { type: T }>>;
  next(
    predicate: (f: LooseFrame) => boolean,
    timeoutMs?: number,
    from?: number,
  ): Promise<LooseFrame>;
  async next(
    predicate: string | ((f: LooseFrame) => boolean),
    timeoutMs = 5_000,
    from = 0,
  ): Promise<unknown> {
    const test =
      typeof predicate === 'string'
        ? (f: ServerFrame) => f.type === predicate
        : (f: ServerFrame) => predicate(f as LooseFrame);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.frames.slice(from).find(test);
      if (found) return found;
      if (Date.now() > deadline || this.ws.readyState === WebSocket.CLOSED)
        throw new Error(
          `no matching frame within ${timeoutMs} ms; got ${JSON.stringify(this.frames).slice(0, 2000)}`,
        );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Sends a command and waits for its result or error. */
  async command(name: string, payload: unknown, id = `c${Math.random().toString(36).slice(2)}`) {
    const from = this.frames.length;
    this.send({ type: 'command', id, name, payload });
    return this.next(
      (f) => (f.type === 'result' || f.type === 'error') && f.id === id,
      10_000,
      from,
    );
  }

  /** `auth` and the `ready` answer. */
  async auth(token?: string): Promise<LooseFrame> {
    this.send(token === undefined ? { type: 'auth' } : { type: 'auth', token });
    return this.next((f) => f.type === 'ready' || f.type === 'error');
  }

  async subscribe(channel: string, offset?: number): Promise<LooseFrame> {
    const id = `s${Math.random().toString(36).slice(2)}`;
    const from = this.frames.length;
    this.send(
      offset === undefined
        ? { type: 'subscribe', channel, id }
        : { type: 'subscribe', channel, id, offset },
    );
    return this.next(
      (f) => (f.type === 'subscribed' || f.type === 'error') && f.id === id,
      5_000,
      from,
    );
  }

  events(channel?: string): Extract<ServerFrame, { type: 'event' }>[] {
    return this.frames.filter(
      (f): f is Extract<ServerFrame, { type: 'event' }> =>
        f.type === 'event' && (channel === undefined || f.channel === channel),
    );
  }

  close(): void {
    this.ws.close();
  }
}

/** Waits for `close`, with a timeout. */
export async function closedWithin(
  socket: TestSocket,
  ms = 10_000,
): Promise<{ code: number; reason: string }> {
  return Promise.race([
    socket.closed,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`socket not closed within ${ms} ms`)), ms).unref(),
    ),
  ]);
}

export interface RealtimeHarness {
  app: FastifyInstance;
  platform: Platform;
  tdb: TestDatabase;
  config: Config;
  logs: LogCapture;
  base: string;
  close(): Promise<void>;
}

/**
 * The whole app listening on a free port (WebSocket needs a real socket), with `apps` mounted,
 * events dispatched in process (`work`), Redis only when `redis` is given.
 */
export async function startRealtimeHarness(
  overrides: Record<string, string> = {},
  apps: readonly AnyModule[] = [],
  options: {
    /** Fan-out through the shared test Redis under this key prefix (true: a fresh one). */
    redis?: boolean | string;
    /** Another harness's database (several "processes" on one database); not dropped here. */
    database?: TestDatabase;
    /** Run the event dispatcher here (default true). */
    work?: boolean;
  } = {},
): Promise<RealtimeHarness> {
  const prefix =
    typeof options.redis === 'string' ? options.redis : `gw-rt-${process.pid}-${Date.now()}:`;
  const config = testConfig(
    {
      EVENTS_POLL_INTERVAL_MS: '200',
      ...(options.redis
        ? {
            REDIS_URL: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0',
            REDIS_KEY_PREFIX: prefix,
          }
        : {}),
      ...overrides,
    },
    apps,
  );
  const tdb =
    options.database ?? (await createTestDatabase({ config, migrations: allMigrations(apps) }));
  const logs = new LogCapture();
  const platform = await createPlatform(config, {
    modules: enabledModules(config, apps),
    database: tdb.database,
    ...(options.redis ? {} : { redis: null }),
    work: options.work ?? true,
    logDestination: logs,
  });
  const app = await buildApp(config, { platform, apps });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    app,
    platform,
    tdb,
    config,
    logs,
    base: address,
    async close() {
      await app.close();
      await platform.close();
      if (!options.database) await tdb.drop();
    },
  };
}

export async function waitOpen(ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.OPEN) return;
  await once(ws, 'open');
}

// Preload for real server processes (`node --import test/helpers/realtime.ts src/main.ts` with
// GW_E2E_AUTHORS_APP=1): the authors app is mounted as if listed in src/apps/index.ts.
if (process.env.GW_E2E_AUTHORS_APP === '1') {
  const { allApps } = await import('../../src/apps/index.ts');
  const { authorsApp } = await import('../../src/apps/authors/index.ts');
  const list = allApps as AnyModule[];
  if (!list.some((m) => m.name === 'authors')) list.push(authorsApp);
}
