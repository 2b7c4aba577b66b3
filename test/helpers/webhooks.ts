import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { buildApp, enabledModules } from '../../src/app.ts';
import type { Config } from '../../src/platform/config/index.ts';
import { defineEvent } from '../../src/platform/events/index.ts';
import { defineModule, type Platform } from '../../src/platform/modules/index.ts';
import { createPlatform } from '../../src/platform/runtime/index.ts';
import { stopWebhooks } from '../../src/platform/webhooks/index.ts';
import { LogCapture, testConfig } from './app.ts';
import { createUser, grantRoles, type TestUser } from './identity.ts';
import { createTestDatabase, type TestDatabase } from './db.ts';

/** A test event type: holders of `whtest:read` see all, and the user it concerns. */
export const thingHappened = defineEvent({
  type: 'whtest.thing.happened',
  description: 'A thing happened (webhooks tests).',
  payload: Type.Object({ n: Type.Integer(), note: Type.String() }, { additionalProperties: false }),
  example: { n: 1, note: 'one' },
  visibility: { permission: 'whtest:read', ownerVisible: true },
});

/** Another type, seen only by holders of `whtest:read`. */
export const secretHappened = defineEvent({
  type: 'whtest.secret.happened',
  description: 'Something only readers see (webhooks tests).',
  payload: Type.Object({ n: Type.Integer() }, { additionalProperties: false }),
  example: { n: 2 },
  visibility: { permission: 'whtest:read', ownerVisible: false },
});

/** A module that declares the test event types (no routes). */
export const whtestModule = defineModule({
  name: 'whtest',
  description: 'Webhooks test events.',
  events: [thingHappened, secretHappened],
  permissions: [
    { name: 'whtest:read', description: 'See every whtest event.', roles: ['moderator'] },
  ],
});

export interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  at: number;
}

export type Behaviour = (req: IncomingMessage, res: ServerResponse, received: Received) => unknown;

/** A real HTTP receiver on 127.0.0.1: records every request, answers as `behaviour` says (200). */
export class Receiver {
  readonly requests: Received[] = [];
  behaviour: Behaviour = (_req, res) => {
    res.writeHead(200).end('ok');
  };
  inFlight = 0;
  maxInFlight = 0;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  constructor() {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const received: Received = {
          path: req.url ?? '/',
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
          at: Date.now(),
        };
        this.requests.push(received);
        this.inFlight += 1;
        this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
        res.on('close', () => (this.inFlight -= 1));
        void Promise.resolve(this.behaviour(req, res, received)).catch(() => res.destroy());
      });
    });
    this.#server.on('connection', (s) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return this;
  }

  url(path = '/hook'): string {
    const { port } = this.#server.address() as AddressInfo;
    return `http://127.0.0.1:${port}${path}`;
  }

  on(path: string): Received[] {
    return this.requests.filter((r) => r.path === path);
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** Verifies a request by the Standard Webhooks spec with one secret (any of its signatures). */
export function verifyBySpec(secret: string, r: Received): boolean {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const content = `${String(r.headers['webhook-id'])}.${String(r.headers['webhook-timestamp'])}.${r.body}`;
  const expected = createHmac('sha256', key).update(content).digest();
  return String(r.headers['webhook-signature'])
    .split(' ')
    .some((sig) => {
      const [version, value] = sig.split(',');
      if (version !== 'v1' || !value) return false;
      const got = Buffer.from(value, 'base64');
      return got.length === expected.length && timingSafeEqual(got, expected);
    });
}

/** The `standardwebhooks` package's verifier, when the package is installed. */
export async function loadStandardWebhooks(): Promise<
  | (new (secret: string) => { verify(body: string, headers: Record<string, string>): unknown })
  | null
> {
  try {
    const name = 'standardwebhooks';
    const mod = (await import(name)) as {
      Webhook: new (secret: string) => {
        verify(body: string, headers: Record<string, string>): unknown;
      };
    };
    return mod.Webhook;
  } catch {
    return null;
  }
}

export interface WebhooksHarness {
  config: Config;
  tdb: TestDatabase;
  platform: Platform;
  app: FastifyInstance;
  logs: LogCapture;
  close(): Promise<void>;
}

/** The real app with the webhooks module and the test event module, workers running. */
export async function startWebhooksHarness(
  overrides: Record<string, string> = {},
): Promise<WebhooksHarness> {
  const config = testConfig(
    {
      WEBHOOKS_ALLOW_PRIVATE_NETWORKS: 'true',
      WEBHOOKS_RETRY_SCHEDULE: '1s,1s',
      WEBHOOKS_TIMEOUT: '5s',
      JOBS_POLL_INTERVAL_MS: '500',
      JOBS_SUPERVISE_INTERVAL_S: '1',
      ...overrides,
    },
    [whtestModule],
  );
  const tdb = await createTestDatabase({ config });
  const logs = new LogCapture();
  const platform = await createPlatform(config, {
    modules: enabledModules(config, [whtestModule]),
    database: tdb.database,
    redis: null,
    work: true,
    logDestination: logs,
  });
  const app = await buildApp(config, { platform, apps: [whtestModule] });
  await app.ready();
  return {
    config,
    tdb,
    platform,
    app,
    logs,
    async close() {
      await app.close();
      await stopWebhooks(platform);
      await platform.close();
      await tdb.drop();
    },
  };
}

/** An account with the built-in `user` role (as registration gives it), and more roles if asked. */
export async function createMember(
  h: Pick<WebhooksHarness, 'tdb' | 'config'>,
  ...roles: string[]
): Promise<TestUser> {
  const user = await createUser(h);
  await grantRoles(h, user.id, 'user', ...roles);
  return user;
}
