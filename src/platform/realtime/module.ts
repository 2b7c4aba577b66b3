import websocket from '@fastify/websocket';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TSchema } from 'typebox';
import type { WebSocket } from 'ws';
import { defineSubscriber, type DomainEvent, type EventType } from '../events/index.ts';
import { HttpError, toHttpError, type FieldError } from '../http/index.ts';
import { defineModule, type Platform } from '../modules/index.ts';
import { channelsOf, defineChannel } from './channels.ts';
import { JSON_PROTOCOL, PROTOBUF_PROTOCOL, type Protocol } from './codec.ts';
import { RealtimeCodes } from './errors.ts';
import { Hub, type Authenticator, type Principal } from './hub.ts';
import { RealtimeConfig, realtimeSettings } from './settings.ts';

const hubs = new WeakMap<Platform, Hub>();

/**
 * The realtime hub of a platform (made on first use): `publish(channel, event, data)` from any
 * process (with Redis it reaches every process's subscribers), `addCommand`, `addChannel`.
 */
export function realtime(platform: Platform): Hub {
  let hub = hubs.get(platform);
  if (!hub) {
    const url = platform.config.redis.url;
    hub = new Hub({
      platform,
      settings: realtimeSettings(platform.config.modules.realtime),
      channels: channelsOf(platform.config),
      typeBase: platform.config.http.problemTypeBase,
      logger: platform.logger,
      redis:
        platform.hasRedis && url !== null
          ? { url, keyPrefix: platform.config.redis.keyPrefix }
          : null,
    });
    hubs.set(platform, hub);
    const made = hub;
    platform.lifecycle.onShutdown(() => made.goAway());
  }
  return hub;
}

/**
 * A subscriber that pushes committed events of these types to realtime channels (after the
 * commit, from the processes that dispatch events): `channels(event)` names the channels of
 * each event (none: not pushed). A module lists it in its `subscribers`.
 */
export function realtimeEvents(options: {
  name: string;
  events: readonly EventType[];
  channels: (event: DomainEvent) => readonly string[];
}) {
  return defineSubscriber({
    name: options.name,
    events: options.events.map((e) => e.type),
    async handle(event, ctx) {
      const hub = realtime(ctx.platform);
      if (hub.stopped) return;
      for (const channel of options.channels(event))
        await hub.publish(channel, event.type, event.data);
    },
  });
}

const TOKEN_PARAMS = /(^|[?&])(token|access_token|accesstoken|bearer|auth|authorization|jwt)=/i;

/** The subprotocol the server speaks (the first acceptable one the client offers) and a `bearer.` token. */
function offered(request: FastifyRequest): { protocol: Protocol | null; token: string | null } {
  const header = request.headers['sec-websocket-protocol'];
  let protocol: Protocol | null = null;
  let token: string | null = null;
  for (const raw of (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',')) {
    const p = raw.trim();
    if (protocol === null && (p === JSON_PROTOCOL || p === PROTOBUF_PROTOCOL)) protocol = p;
    else if (p.startsWith('bearer.') && token === null) token = p.slice(7);
  }
  return { protocol, token };
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The principal of a `bearer.` subprotocol token, checked before the upgrade. */
    realtimePrincipal?: Principal | null;
  }
}

/** Sec-WebSocket-Protocol values are tokens: a JWT fits (base64url and dots). */
export async function registerRealtime(
  app: FastifyInstance,
  hub: Hub,
  authenticate: Authenticator,
): Promise<void> {
  hub.authenticate = authenticate;
  hub.compileBody = (schema: TSchema, name: string) => {
    const compile = app.validatorCompiler as unknown as
      | ((route: { schema: unknown; method: string; url: string; httpPart: string }) => {
          (data: unknown): unknown;
          errors?: unknown;
        })
      | undefined;
    if (!compile) throw new Error('the validator compiler is not ready');
    const validate = compile({ schema, method: 'POST', url: `/ws#${name}`, httpPart: 'body' });
    return (value: unknown): FieldError[] | null => {
      const result = validate(value);
      if (result === true) return null;
      const errors =
        result && typeof result === 'object' && 'error' in result ? result.error : validate.errors;
      const { httpError } = toHttpError(
        { validation: Array.isArray(errors) ? errors : [], validationContext: 'body' },
        false,
      );
      return httpError.errors ?? [];
    };
  };
  await app.register(websocket, {
    options: {
      maxPayload: hub.settings.maxFrameBytes,
      perMessageDeflate: false,
      // The subprotocol was chosen before the upgrade; never a `bearer.` one.
      handleProtocols: (protocols: Set<string>) =>
        protocols.has(JSON_PROTOCOL)
          ? JSON_PROTOCOL
          : protocols.has(PROTOBUF_PROTOCOL)
            ? PROTOBUF_PROTOCOL
            : false,
      // Not kept per socket: memory per idle connection matters at 50,000 of them.
      clientTracking: false,
    },
    preClose(done) {
      hub.goAway();
      done();
    },
    errorHandler(_error, socket) {
      socket.terminate();
    },
  });
  app.get(
    '/ws',
    {
      websocket: true,
      config: { auth: 'none' },
      // A query schema makes Fastify set up the root's validator compiler, which commands use.
      schema: { hide: true, querystring: { type: 'object' } },
      // Checked before the upgrade: refused with a problem body, never a socket.
      preValidation: async (request) => {
        const query = request.url.indexOf('?');
        if (query >= 0 && TOKEN_PARAMS.test(request.url.slice(query))) {
          hub.metrics.refused.inc({ reason: 'token-in-url' });
          throw new HttpError(RealtimeCodes.TOKEN_IN_URL);
        }
        if (!request.ws) return;
        if (hub.closing) throw new HttpError('OVERLOADED', { detail: 'Shutting down.' });
        const { protocol, token } = offered(request);
        if (protocol === null) {
          hub.metrics.refused.inc({ reason: 'subprotocol' });
          throw new HttpError(RealtimeCodes.SUBPROTOCOL_REQUIRED);
        }
        if (!hub.ipHasRoom(request.ip)) {
          hub.metrics.refused.inc({ reason: 'ip-limit' });
          throw new HttpError('RATE_LIMITED', {
            detail: `At most ${hub.settings.maxConnectionsPerIp} connections per address.`,
          });
        }
        if (token !== null) {
          const principal = await authenticate(token);
          if (!principal) {
            hub.metrics.refused.inc({ reason: 'invalid-token' });
            throw new HttpError('INVALID_ACCESS_TOKEN');
          }
          request.realtimePrincipal = principal;
        }
      },
    },
    (socket: WebSocket, request: FastifyRequest) => {
      // @fastify/websocket's error listener holds the request and reply (and the raw request)
      // for the socket's life: several KB per idle connection. The hub listens for errors itself.
      socket.removeAllListeners('error');
      const protocol = socket.protocol === PROTOBUF_PROTOCOL ? PROTOBUF_PROTOCOL : JSON_PROTOCOL;
      hub.accept(socket, protocol, request.ip, request.realtimePrincipal ?? null);
    },
  );
}

/** The identity area's token check (its own tokens and an external issuer's), as the hub wants it. */
function identityAuthenticator(app: FastifyInstance): Authenticator {
  return async (token) => {
    if (typeof app.authenticateBearer !== 'function') return null;
    const outcome = await app.authenticateBearer(token);
    if (outcome === null || outcome === 'malformed') return null;
    return { userId: outcome.userId, sessionId: outcome.sessionId, amr: outcome.amr };
  };
}

/** Identity's events that change what a socket may do. */
const sessionRevocations = defineSubscriber({
  name: 'realtime.session-revoked',
  events: ['session.revoked'],
  async handle(event, ctx) {
    const hub = realtime(ctx.platform);
    if (hub.stopped) return;
    const { sessionId } = event.data as { sessionId: string };
    await hub.revokeSessions([sessionId]);
  },
});

const roleChanges = defineSubscriber({
  name: 'realtime.role-changed',
  events: ['role.granted', 'role.revoked', 'user.deleted'],
  async handle(event, ctx) {
    const hub = realtime(ctx.platform);
    if (hub.stopped) return;
    const { userId } = event.data as { userId: string };
    await hub.recheckUsers([userId]);
  },
});

/**
 * The WebSocket endpoint `GET /ws` on the API's port: channels declared by the modules, commands
 * added by them, fan-out through Redis when configured. See docs/realtime.md.
 */
export const realtimeModule = defineModule({
  name: 'realtime',
  description: 'The WebSocket endpoint: channels, events after commit, commands.',
  dependsOn: ['identity'],
  config: RealtimeConfig,
  tags: [],
  prefix: '',
  subscribers: [sessionRevocations, roleChanges],
  channels: [
    defineChannel({
      name: 'user:*',
      description:
        "One user’s own channel (`user:<id>`): messages for that user from any module (`realtime(platform).publish('user:' + id, …)`).",
      authorize: (ctx) => ctx.userId !== null && ctx.param === ctx.userId,
    }),
  ],
  async register(app, { platform }) {
    const hub = realtime(platform);
    await registerRealtime(app, hub, identityAuthenticator(app));
    if (platform.live) await hub.start();
    app.addHook('onClose', () => hub.close());
  },
});
