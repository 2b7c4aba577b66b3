import type { TSchema } from 'typebox';
import { Compile, type Validator } from 'typebox/compile';
import type { WebSocket } from 'ws';
import { translateDbError } from '../db/index.ts';
import {
  HttpCodes,
  HttpError,
  listErrorCodes,
  newRequestId,
  problemType,
  toHttpError,
  type ProblemBody,
} from '../http/index.ts';
import type { Platform } from '../modules/index.ts';
import type { Logger } from '../observability/index.ts';
import { Redis } from 'ioredis';
import type { ChannelRegistry } from './channels.ts';
import { type ChannelContext, type ChannelDefinition } from './channels.ts';
import {
  decodeJson,
  decodeProtobuf,
  encodeJson,
  encodeProtobuf,
  FrameError,
  JSON_PROTOCOL,
  type ClientFrame,
  type Protocol,
  type ServerFrame,
} from './codec.ts';
import type { CommandContext, CommandDefinition } from './commands.ts';
import { RealtimeCodes } from './errors.ts';
import { MemoryHistory, parseEntry, RedisHistory, type Envelope, type History } from './history.ts';
import { realtimeMetrics, type RealtimeMetrics } from './metrics.ts';
import type { RealtimeSettings } from './settings.ts';

/** What identity answers for a token: the session, or null (invalid, expired, revoked). */
export interface Principal {
  userId: string;
  sessionId: string;
  amr: readonly string[];
}
export type Authenticator = (token: string) => Promise<Principal | null>;

/** Close codes (RFC 6455 and the registered 1012/1013). */
export const CloseCodes = {
  /** Server going away (shutdown): reconnect, to another instance. */
  GOING_AWAY: 1001,
  /** Policy: no or a bad token, session revoked, too many connections, frame flood. */
  POLICY: 1008,
  /** Frame above REALTIME_MAX_FRAME_BYTES (sent by `ws` itself). */
  TOO_BIG: 1009,
  /** Slow consumer: the send buffer passed REALTIME_MAX_BUFFERED_BYTES. */
  TRY_AGAIN_LATER: 1013,
} as const;

interface Subscription {
  /** The last offset sent on this channel. */
  last: number;
  /** Live events held while the history is replayed; null once live. */
  pending: { offset: number; envelope: Envelope }[] | null;
}

let nextConnectionId = 0;

/** One socket. */
export class Connection {
  readonly id = ++nextConnectionId;
  readonly socket: WebSocket;
  readonly protocol: Protocol;
  readonly ip: string;
  state: 'auth' | 'open' | 'closed' = 'auth';
  userId: string | null = null;
  sessionId: string | null = null;
  amr: readonly string[] = [];
  readonly subs = new Map<string, Subscription>();
  alive = true;
  windowStart = 0;
  windowCount = 0;
  authTimer: NodeJS.Timeout | null = null;
  constructor(socket: WebSocket, protocol: Protocol, ip: string) {
    this.socket = socket;
    this.protocol = protocol;
    this.ip = ip;
  }
}

export interface HubOptions {
  platform: Platform;
  settings: RealtimeSettings;
  channels: ChannelRegistry;
  /** The problem `type` base (`PROBLEM_TYPE_BASE`). */
  typeBase: string;
  logger: Logger;
  /** Redis URL and key prefix for fan-out across processes; null: one process. */
  redis: { url: string; keyPrefix: string } | null;
}

type PayloadValidator = (payload: unknown) => { path: string; message: string }[] | null;

/**
 * The realtime hub of one process: connections, their subscriptions, the channel histories and
 * the fan-out (Redis pub/sub between processes, or in process), commands.
 */
export class Hub {
  readonly settings: RealtimeSettings;
  readonly channels: ChannelRegistry;
  readonly metrics: RealtimeMetrics;
  readonly #platform: Platform;
  readonly #log: Logger;
  readonly #typeBase: string;
  readonly #connections = new Set<Connection>();
  readonly #byChannel = new Map<string, Set<Connection>>();
  readonly #bySession = new Map<string, Set<Connection>>();
  readonly #byUser = new Map<string, Set<Connection>>();
  readonly #byIp = new Map<string, number>();
  readonly #commands = new Map<string, { def: CommandDefinition; validate?: PayloadValidator }>();
  readonly #publishValidators = new WeakMap<ChannelDefinition, Validator>();
  #history: History;
  #pub: Redis | null = null;
  #sub: Redis | null = null;
  readonly #fanoutChannel: string;
  readonly #controlChannel: string;
  #heartbeat: NodeJS.Timeout | null = null;
  #closing = false;
  #starting: Promise<void> | null = null;
  #stopped = false;
  /** Compiles a command's payload schema as Fastify compiles a body schema (set by the module). */
  compileBody: ((schema: TSchema, name: string) => PayloadValidator) | null = null;
  authenticate: Authenticator = () => Promise.resolve(null);
  readonly #titles = new Map<string, string>();
  readonly #redisSettings: HubOptions['redis'];

  constructor(options: HubOptions) {
    this.settings = options.settings;
    this.channels = options.channels;
    this.#platform = options.platform;
    this.#log = options.logger.child({ component: 'realtime' });
    this.#typeBase = options.typeBase;
    this.metrics = realtimeMetrics(options.platform.metrics);
    this.#redisSettings = options.redis;
    const prefix = options.redis?.keyPrefix ?? '';
    this.#fanoutChannel = `${prefix}realtime:fanout`;
    this.#controlChannel = `${prefix}realtime:control`;
    this.#history = new MemoryHistory(
      this.settings.historySize,
      this.settings.historyTtlMs,
      (offset, envelope) => this.#deliver(offset, envelope),
    );
  }

  get hasRedis(): boolean {
    return this.#pub !== null;
  }

  /** Opens the Redis connections (publisher and subscriber) and starts the heartbeat. */
  start(): Promise<void> {
    this.#starting ??= this.#start();
    return this.#starting;
  }

  /** Closed: publishing is refused, subscribers skip their events. */
  get stopped(): boolean {
    return this.#stopped;
  }

  async #start(): Promise<void> {
    const redis = this.#redisSettings;
    if (redis) {
      const common = {
        maxRetriesPerRequest: 1,
        retryStrategy: (attempt: number) => Math.min(attempt * 100, 2_000),
        lazyConnect: true,
      };
      const pub = new Redis(redis.url, {
        ...common,
        keyPrefix: redis.keyPrefix,
        enableOfflineQueue: false,
        connectionName: 'groundwork-realtime',
      });
      // The subscriber queues its SUBSCRIBE until connected and re-subscribes after a reconnect.
      const sub = new Redis(redis.url, { ...common, connectionName: 'groundwork-realtime-sub' });
      let down = false;
      for (const client of [pub, sub]) {
        client.on('error', (error: Error) => {
          if (down) return;
          down = true;
          this.#log.warn({ err: { message: error.message } }, 'realtime redis unavailable');
        });
        client.on('ready', () => {
          down = false;
        });
      }
      sub.on('messageBuffer', (channel: Buffer, message: Buffer) =>
        this.#onRedisMessage(channel.toString(), message.toString()),
      );
      await Promise.all([pub.connect(), sub.connect()]);
      await sub.subscribe(this.#fanoutChannel, this.#controlChannel);
      this.#pub = pub;
      this.#sub = sub;
      this.#history = new RedisHistory(
        pub,
        this.settings.historySize,
        this.settings.historyTtlMs,
        this.#fanoutChannel,
      );
    }
    const interval = this.settings.heartbeatIntervalMs;
    this.#heartbeat = setInterval(() => this.#beat(), interval);
    this.#heartbeat.unref();
  }

  #onRedisMessage(channel: string, message: string): void {
    if (channel === this.#fanoutChannel) {
      const entry = parseEntry(message);
      if (entry) this.#deliver(entry.offset, entry.envelope);
      return;
    }
    if (channel === this.#controlChannel) {
      try {
        const control = JSON.parse(message) as { revoke?: string[]; recheck?: string[] };
        if (control.revoke) this.#closeSessions(control.revoke);
        if (control.recheck) void this.#recheckUsers(control.recheck);
      } catch {
        // Not ours: ignore.
      }
    }
  }

  // ---- commands ----

  /** Adds a WebSocket command (an app's routes call this beside their HTTP routes). */
  addCommand(def: CommandDefinition): void {
    if (this.#commands.has(def.name)) throw new Error(`command ${def.name} is declared twice`);
    this.#commands.set(def.name, { def });
  }

  commandNames(): string[] {
    return [...this.#commands.keys()].sort();
  }

  /** Adds a channel (modules may declare theirs in `channels` instead). */
  addChannel(def: ChannelDefinition): void {
    this.channels.add(def);
  }

  // ---- publishing ----

  /**
   * Publishes an event on a channel: appended to its history, delivered to its subscribers in
   * every process. Resolves with its offset.
   */
  async publish(channel: string, event: string, data: unknown): Promise<number> {
    if (this.#stopped) throw new Error('the realtime hub is closed');
    // A process that only publishes (a worker) opens its Redis connections on first use.
    if (this.#redisSettings && !this.#pub) await this.start();
    return this.#history.append({ c: channel, e: event, d: data ?? null, t: Date.now() });
  }

  #deliver(offset: number, envelope: Envelope): void {
    this.metrics.fanoutLag.observe(Math.max(0, Date.now() - envelope.t) / 1000);
    const subscribers = this.#byChannel.get(envelope.c);
    if (!subscribers || subscribers.size === 0) return;
    const frame: ServerFrame = {
      type: 'event',
      channel: envelope.c,
      event: envelope.e,
      data: envelope.d,
      offset,
    };
    let json: string | undefined;
    let proto: Uint8Array | undefined;
    let sent = 0;
    for (const conn of subscribers) {
      const sub = conn.subs.get(envelope.c);
      if (!sub) continue;
      if (sub.pending) {
        sub.pending.push({ offset, envelope });
        continue;
      }
      if (offset <= sub.last) continue;
      sub.last = offset;
      if (conn.protocol === JSON_PROTOCOL) this.#sendRaw(conn, (json ??= encodeJson(frame)));
      else this.#sendRaw(conn, (proto ??= encodeProtobuf(frame)));
      sent += 1;
    }
    if (sent > 0) this.metrics.messagesOut.inc({ type: 'event' }, sent);
  }

  // ---- connections ----

  /** Whether this address may open one more connection. */
  ipHasRoom(ip: string): boolean {
    return (this.#byIp.get(ip) ?? 0) < this.settings.maxConnectionsPerIp;
  }

  get closing(): boolean {
    return this.#closing;
  }

  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Takes an upgraded socket; `principal` when the `bearer.` subprotocol authenticated it. */
  accept(socket: WebSocket, protocol: Protocol, ip: string, principal: Principal | null): void {
    const conn = new Connection(socket, protocol, ip);
    if (this.#closing) {
      socket.close(CloseCodes.GOING_AWAY, 'server shutting down');
      return;
    }
    this.#connections.add(conn);
    this.#byIp.set(ip, (this.#byIp.get(ip) ?? 0) + 1);
    this.metrics.connections.inc({ protocol });
    socket.on('message', (data: Buffer, isBinary: boolean) =>
      this.#onMessage(conn, data, isBinary),
    );
    socket.on('pong', () => {
      conn.alive = true;
    });
    socket.on('close', () => this.#onClose(conn));
    socket.on('error', () => {
      // A broken socket is followed by `close`.
    });
    if (principal) this.#ready(conn, principal);
    else {
      conn.authTimer = setTimeout(() => {
        if (conn.state !== 'auth') return;
        this.metrics.refused.inc({ reason: 'auth-timeout' });
        this.#close(conn, CloseCodes.POLICY, 'authentication timeout');
      }, this.settings.authTimeoutMs);
      conn.authTimer.unref();
    }
  }

  #ready(conn: Connection, principal: Principal | null): void {
    if (conn.authTimer) clearTimeout(conn.authTimer);
    conn.authTimer = null;
    if (principal) {
      let mine = this.#byUser.get(principal.userId);
      if ((mine?.size ?? 0) >= this.settings.maxConnectionsPerUser) {
        this.metrics.refused.inc({ reason: 'user-limit' });
        this.#send(conn, {
          type: 'error',
          problem: this.problem(
            new HttpError(HttpCodes.RATE_LIMITED, {
              detail: `At most ${this.settings.maxConnectionsPerUser} connections per user.`,
            }),
          ),
        });
        this.#close(conn, CloseCodes.POLICY, 'too many connections');
        return;
      }
      conn.userId = principal.userId;
      conn.sessionId = principal.sessionId;
      conn.amr = principal.amr;
      if (!mine) this.#byUser.set(principal.userId, (mine = new Set()));
      mine.add(conn);
      let sessions = this.#bySession.get(principal.sessionId);
      if (!sessions) this.#bySession.set(principal.sessionId, (sessions = new Set()));
      sessions.add(conn);
    }
    conn.state = 'open';
    this.#send(conn, { type: 'ready', userId: conn.userId });
  }

  #onClose(conn: Connection): void {
    if (conn.state === 'closed') return;
    conn.state = 'closed';
    if (conn.authTimer) clearTimeout(conn.authTimer);
    this.#connections.delete(conn);
    const n = (this.#byIp.get(conn.ip) ?? 1) - 1;
    if (n <= 0) this.#byIp.delete(conn.ip);
    else this.#byIp.set(conn.ip, n);
    this.metrics.connections.dec({ protocol: conn.protocol });
    for (const channel of conn.subs.keys()) this.#unsubscribe(conn, channel);
    if (conn.userId) {
      const mine = this.#byUser.get(conn.userId);
      mine?.delete(conn);
      if (mine?.size === 0) this.#byUser.delete(conn.userId);
    }
    if (conn.sessionId) {
      const s = this.#bySession.get(conn.sessionId);
      s?.delete(conn);
      if (s?.size === 0) this.#bySession.delete(conn.sessionId);
    }
  }

  #close(conn: Connection, code: number, reason: string): void {
    if (conn.socket.readyState > 1) return;
    conn.socket.close(code, reason);
    // A peer that does not answer the closing handshake (or never reads) is cut off.
    setTimeout(() => conn.socket.terminate(), 2_000).unref();
  }

  #beat(): void {
    for (const conn of this.#connections) {
      if (!conn.alive) {
        this.metrics.refused.inc({ reason: 'dead-peer' });
        conn.socket.terminate();
        continue;
      }
      conn.alive = false;
      try {
        conn.socket.ping();
      } catch {
        conn.socket.terminate();
      }
    }
  }

  // ---- sending ----

  #send(conn: Connection, frame: ServerFrame): void {
    this.metrics.messagesOut.inc({ type: frame.type });
    this.#sendRaw(
      conn,
      conn.protocol === JSON_PROTOCOL ? encodeJson(frame) : encodeProtobuf(frame),
    );
  }

  #sendRaw(conn: Connection, data: string | Uint8Array): void {
    const socket = conn.socket;
    if (socket.readyState !== 1) return;
    if (socket.bufferedAmount > this.settings.maxBufferedBytes) {
      // A client that does not read: dropped rather than buffered without bound.
      this.metrics.slowConsumers.inc();
      this.metrics.refused.inc({ reason: 'slow-consumer' });
      this.#onClose(conn);
      socket.close(CloseCodes.TRY_AGAIN_LATER, 'slow consumer');
      setTimeout(() => socket.terminate(), 1_000).unref();
      return;
    }
    socket.send(data);
  }

  /** The problem body of an error, exactly as the HTTP error handler writes it. */
  problem(error: HttpError, requestId = newRequestId()): ProblemBody {
    if (this.#titles.size === 0)
      for (const c of listErrorCodes()) this.#titles.set(c.code, c.title);
    const body: ProblemBody = {
      ...error.extensions,
      type: problemType(this.#typeBase, error.code),
      title: this.#titles.get(error.code) ?? 'Error',
      status: error.status,
      detail: error.detail ?? this.#titles.get(error.code) ?? '',
      code: error.code,
      requestId,
    };
    if (error.errors) body.errors = error.errors;
    return body;
  }

  #fail(conn: Connection, error: HttpError, ref: { id?: string; channel?: string } = {}): void {
    const frame: ServerFrame = { type: 'error', problem: this.problem(error) };
    if (ref.id !== undefined) frame.id = ref.id;
    if (ref.channel !== undefined) frame.channel = ref.channel;
    this.#send(conn, frame);
  }

  // ---- receiving ----

  #onMessage(conn: Connection, data: Buffer, isBinary: boolean): void {
    conn.alive = true;
    if (conn.state === 'closed') return;
    // Flood control: a fixed one-second window per connection.
    const now = Date.now();
    if (now - conn.windowStart >= 1_000) {
      conn.windowStart = now;
      conn.windowCount = 0;
    }
    conn.windowCount += 1;
    const limit = this.settings.messagesPerSecond;
    if (conn.windowCount > limit) {
      if (conn.windowCount > limit * 10) {
        this.metrics.refused.inc({ reason: 'flood' });
        this.#onClose(conn);
        conn.socket.close(CloseCodes.POLICY, 'too many messages');
        setTimeout(() => conn.socket.terminate(), 1_000).unref();
      } else if (conn.windowCount === limit + 1) {
        this.#fail(
          conn,
          new HttpError(HttpCodes.RATE_LIMITED, {
            detail: `At most ${limit} frames per second; frames past it are dropped.`,
          }),
        );
      }
      this.metrics.messagesIn.inc({ type: 'dropped' });
      return;
    }
    let frame: ClientFrame;
    try {
      if (conn.protocol === JSON_PROTOCOL) {
        if (isBinary) throw new FrameError('malformed', 'binary frame on the JSON subprotocol');
        frame = decodeJson(data);
      } else {
        if (!isBinary) throw new FrameError('malformed', 'text frame on the Protobuf subprotocol');
        frame = decodeProtobuf(data);
      }
    } catch (error) {
      this.metrics.messagesIn.inc({ type: 'invalid' });
      const fe = error instanceof FrameError ? error : new FrameError('malformed', 'bad frame');
      this.#fail(
        conn,
        new HttpError(
          fe.reason === 'unknown-type'
            ? RealtimeCodes.UNKNOWN_FRAME_TYPE
            : RealtimeCodes.MALFORMED_FRAME,
          { detail: fe.message },
        ),
        fe.id === undefined ? {} : { id: fe.id },
      );
      return;
    }
    this.metrics.messagesIn.inc({ type: frame.type });
    this.#handle(conn, frame).catch((error: unknown) => {
      this.#log.error({ err: error, connection: conn.id }, 'realtime frame failed');
    });
  }

  async #handle(conn: Connection, frame: ClientFrame): Promise<void> {
    if (frame.type === 'ping') return this.#send(conn, { type: 'pong' });
    if (frame.type === 'pong') return;
    if (conn.state === 'auth') {
      if (frame.type !== 'auth') {
        this.#fail(
          conn,
          new HttpError(HttpCodes.UNAUTHORIZED, {
            detail: 'Send `{"type":"auth","token":...}` first (no token: anonymous).',
          }),
          'id' in frame && frame.id !== undefined ? { id: frame.id } : {},
        );
        return;
      }
      if (frame.token === undefined) return this.#ready(conn, null);
      const principal = await this.authenticate(frame.token);
      if (conn.state !== 'auth') return;
      if (!principal) {
        this.metrics.refused.inc({ reason: 'invalid-token' });
        this.#fail(conn, new HttpError('INVALID_ACCESS_TOKEN'));
        this.#close(conn, CloseCodes.POLICY, 'invalid token');
        return;
      }
      return this.#ready(conn, principal);
    }
    switch (frame.type) {
      case 'auth':
        return this.#fail(conn, new HttpError(RealtimeCodes.ALREADY_AUTHENTICATED));
      case 'subscribe':
        return this.#subscribe(conn, frame.channel, frame.offset, frame.id);
      case 'unsubscribe': {
        if (conn.subs.has(frame.channel)) this.#unsubscribe(conn, frame.channel);
        const reply: ServerFrame = { type: 'unsubscribed', channel: frame.channel };
        if (frame.id !== undefined) reply.id = frame.id;
        return this.#send(conn, reply);
      }
      case 'publish':
        return this.#clientPublish(conn, frame.channel, frame.data, frame.id);
      case 'command':
        return this.#command(conn, frame.id, frame.name, frame.payload);
    }
  }

  #context(conn: Connection, param: string): ChannelContext {
    return {
      userId: conn.userId,
      sessionId: conn.sessionId,
      amr: conn.amr,
      param,
      platform: this.#platform,
    };
  }

  /** Whether this connection may subscribe to the channel. */
  async #mayRead(conn: Connection, def: ChannelDefinition, param: string): Promise<boolean> {
    if (def.public) return def.authorize ? def.authorize(this.#context(conn, param)) : true;
    if (!conn.userId) return false;
    if (
      def.permission &&
      !(await this.#platform.access.hasPermission(conn.userId, def.permission, conn.amr))
    )
      return false;
    return def.authorize ? def.authorize(this.#context(conn, param)) : true;
  }

  async #subscribe(
    conn: Connection,
    channel: string,
    offset: number | undefined,
    id: string | undefined,
  ): Promise<void> {
    const ref = id === undefined ? { channel } : { id, channel };
    const resolved = this.channels.resolve(channel);
    const notFound = () =>
      this.#fail(
        conn,
        new HttpError(RealtimeCodes.CHANNEL_NOT_FOUND, {
          detail: 'No such channel, or not one this connection may subscribe to.',
        }),
        ref,
      );
    if (!resolved) return notFound();
    if (!conn.subs.has(channel) && conn.subs.size >= this.settings.maxSubscriptions)
      return this.#fail(
        conn,
        new HttpError(RealtimeCodes.TOO_MANY_SUBSCRIPTIONS, {
          detail: `At most ${this.settings.maxSubscriptions} subscriptions per connection.`,
        }),
        ref,
      );
    let allowed: boolean;
    try {
      allowed = await this.#mayRead(conn, resolved.definition, resolved.param);
    } catch (error) {
      return this.#fail(conn, this.#httpError(error), ref);
    }
    if (conn.state === 'closed') return;
    if (!allowed) return notFound();
    // Live events are held while the history is read, then merged in offset order.
    let sub = conn.subs.get(channel);
    if (!sub) {
      if (conn.subs.size >= this.settings.maxSubscriptions)
        return this.#fail(conn, new HttpError(RealtimeCodes.TOO_MANY_SUBSCRIPTIONS), ref);
      sub = { last: 0, pending: [] };
      conn.subs.set(channel, sub);
      let set = this.#byChannel.get(channel);
      if (!set) this.#byChannel.set(channel, (set = new Set()));
      set.add(conn);
      this.metrics.subscriptions.inc();
    } else sub.pending ??= [];
    try {
      const replay: { offset: number; envelope: Envelope }[] = [];
      let latest: number;
      let reset = false;
      if (offset === undefined) latest = await this.#history.latest(channel);
      else {
        const recovery = await this.#history.since(channel, offset);
        latest = recovery.latest;
        if (recovery.kind === 'reset') reset = true;
        else replay.push(...recovery.events);
      }
      if (conn.subs.get(channel) !== sub) return;
      const reply: ServerFrame = { type: 'subscribed', channel, offset: latest };
      if (id !== undefined) reply.id = id;
      this.#send(conn, reply);
      if (reset) this.#send(conn, { type: 'reset', channel, offset: latest });
      const held = sub.pending ?? [];
      sub.pending = null;
      sub.last = Math.max(sub.last, offset === undefined || reset ? latest : offset);
      for (const e of [...replay, ...held].sort((a, b) => a.offset - b.offset)) {
        if (e.offset <= sub.last) continue;
        sub.last = e.offset;
        this.#send(conn, {
          type: 'event',
          channel,
          event: e.envelope.e,
          data: e.envelope.d,
          offset: e.offset,
        });
      }
    } catch (error) {
      this.#unsubscribe(conn, channel);
      this.#fail(conn, this.#httpError(error), ref);
    }
  }

  #unsubscribe(conn: Connection, channel: string): void {
    if (!conn.subs.delete(channel)) return;
    this.metrics.subscriptions.dec();
    const set = this.#byChannel.get(channel);
    set?.delete(conn);
    if (set?.size === 0) this.#byChannel.delete(channel);
  }

  async #clientPublish(
    conn: Connection,
    channel: string,
    data: unknown,
    id: string | undefined,
  ): Promise<void> {
    const ref = id === undefined ? { channel } : { id, channel };
    const resolved = this.channels.resolve(channel);
    if (!resolved || !(await this.#mayRead(conn, resolved.definition, resolved.param)))
      return this.#fail(conn, new HttpError(RealtimeCodes.CHANNEL_NOT_FOUND), ref);
    const def = resolved.definition;
    if (!def.canPublish || !(await def.canPublish(this.#context(conn, resolved.param))))
      return this.#fail(conn, new HttpError(RealtimeCodes.PUBLISH_NOT_ALLOWED), ref);
    if (def.publishSchema) {
      let validator = this.#publishValidators.get(def);
      if (!validator) this.#publishValidators.set(def, (validator = Compile(def.publishSchema)));
      if (!validator.Check(data))
        return this.#fail(
          conn,
          new HttpError(HttpCodes.VALIDATION_FAILED, {
            detail: 'The request does not match the schema.',
            errors: validator
              .Errors(data)
              .map((e) => ({ path: `/body/data${e.instancePath}`, message: e.message })),
          }),
          ref,
        );
    }
    const offset = await this.publish(channel, 'publish', { from: conn.userId, data });
    if (id !== undefined) this.#send(conn, { type: 'result', id, payload: { offset } });
  }

  async #command(conn: Connection, id: string, name: string, payload: unknown): Promise<void> {
    const requestId = newRequestId();
    const entry = this.#commands.get(name);
    const fail = (error: HttpError) =>
      this.#send(conn, { type: 'error', id, problem: this.problem(error, requestId) });
    if (!entry) return fail(new HttpError(RealtimeCodes.UNKNOWN_COMMAND));
    const { def } = entry;
    try {
      if ((def.auth ?? 'required') === 'required' || def.permission) {
        if (!conn.userId)
          return fail(
            new HttpError(HttpCodes.UNAUTHORIZED, {
              detail: 'Sign in and send the access token as `Authorization: Bearer <token>`.',
            }),
          );
      }
      if (def.permission && conn.userId) {
        const verdict = await this.#platform.access.check(conn.userId, def.permission, conn.amr);
        if (verdict === 'forbidden')
          return fail(
            new HttpError(HttpCodes.FORBIDDEN, {
              detail: `This needs the \`${def.permission}\` permission.`,
            }),
          );
        if (verdict === 'mfa-required') return fail(new HttpError('MFA_REQUIRED'));
      }
      entry.validate ??= this.#compile(def);
      const body = structuredClone(payload);
      const errors = entry.validate(body);
      if (errors)
        return fail(
          new HttpError(HttpCodes.VALIDATION_FAILED, {
            detail: 'The request does not match the schema.',
            errors,
          }),
        );
      const context: CommandContext = {
        userId: conn.userId,
        sessionId: conn.sessionId,
        amr: conn.amr,
        requestId,
        ip: conn.ip,
        platform: this.#platform,
      };
      const result = await def.handle(body, context);
      if (conn.state === 'closed') return;
      this.#send(conn, { type: 'result', id, payload: result ?? null });
    } catch (error) {
      if (conn.state === 'closed') return;
      fail(this.#httpError(error, { command: name, connection: conn.id }));
    }
  }

  #compile(def: CommandDefinition): PayloadValidator {
    if (this.compileBody) return this.compileBody(def.payload, def.name);
    const validator = Compile(def.payload);
    return (value) =>
      validator.Check(value)
        ? null
        : validator
            .Errors(value)
            .map((e) => ({ path: `/body${e.instancePath}`, message: e.message }));
  }

  /** Anything thrown, as the HTTP error handler would answer it (database errors translated). */
  #httpError(error: unknown, log?: Record<string, unknown>): HttpError {
    if (error instanceof HttpError) return error;
    const translated = translateDbError(error);
    if (translated) return translated;
    const { httpError, unexpected } = toHttpError(error, false);
    if (unexpected) this.#log.error({ err: error, ...log }, 'unexpected error in a realtime frame');
    return httpError;
  }

  // ---- sessions and authorisation changes ----

  /** Closes (1008) the sockets of these sessions, in every process. */
  async revokeSessions(sessionIds: readonly string[]): Promise<void> {
    if (sessionIds.length === 0) return;
    if (this.#redisSettings && !this.#pub) await this.start();
    if (this.#pub)
      await this.#pub.publish(this.#controlChannel, JSON.stringify({ revoke: sessionIds }));
    else this.#closeSessions(sessionIds);
  }

  /** Re-checks the subscriptions of these users (roles changed), in every process. */
  async recheckUsers(userIds: readonly string[]): Promise<void> {
    if (userIds.length === 0) return;
    if (this.#redisSettings && !this.#pub) await this.start();
    if (this.#pub)
      await this.#pub.publish(this.#controlChannel, JSON.stringify({ recheck: userIds }));
    else await this.#recheckUsers(userIds);
  }

  #closeSessions(sessionIds: readonly string[]): void {
    for (const id of sessionIds) {
      for (const conn of [...(this.#bySession.get(id) ?? [])]) {
        this.metrics.refused.inc({ reason: 'session-revoked' });
        this.#fail(
          conn,
          new HttpError('INVALID_ACCESS_TOKEN', { detail: 'The session was revoked.' }),
        );
        this.#onClose(conn);
        conn.socket.close(CloseCodes.POLICY, 'session revoked');
        setTimeout(() => conn.socket.terminate(), 1_000).unref();
      }
    }
  }

  async #recheckUsers(userIds: readonly string[]): Promise<void> {
    for (const userId of userIds) {
      for (const conn of [...(this.#byUser.get(userId) ?? [])]) {
        for (const channel of [...conn.subs.keys()]) {
          const resolved = this.channels.resolve(channel);
          const allowed =
            resolved !== undefined &&
            (await this.#mayRead(conn, resolved.definition, resolved.param).catch(() => false));
          if (!allowed && conn.subs.has(channel)) {
            this.#unsubscribe(conn, channel);
            this.#send(conn, { type: 'unsubscribed', channel });
          }
        }
      }
    }
  }

  // ---- shutdown ----

  /** Every socket gets 1001 (reconnect elsewhere); new upgrades are refused. */
  goAway(): void {
    if (this.#closing) return;
    this.#closing = true;
    for (const conn of [...this.#connections]) {
      this.#onClose(conn);
      if (conn.socket.readyState <= 1)
        conn.socket.close(CloseCodes.GOING_AWAY, 'server shutting down: reconnect');
    }
  }

  async close(): Promise<void> {
    this.#stopped = true;
    this.goAway();
    await this.#starting?.catch(() => undefined);
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#heartbeat = null;
    const clients = [this.#pub, this.#sub].filter((c): c is Redis => c !== null);
    this.#pub = null;
    this.#sub = null;
    await Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())));
  }
}
