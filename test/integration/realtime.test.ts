// The realtime endpoint (GET /ws) in one process, without Redis: the protocol, authentication,
// channels and their authorisation, recovery by offset, limits, backpressure, revocation, and
// every bad input of issue 19. The Protobuf subprotocol and Redis fan-out have their own files.
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { Type } from 'typebox';
import { decodeJwt, decodeProtectedHeader, importPKCS8, SignJWT } from 'jose';
import { TEST_JWT_PRIVATE_KEY } from '../helpers/app.ts';
import { defineModule, type Platform } from '../../src/platform/modules/index.ts';
import {
  defineChannel,
  defineCommand,
  PROTOBUF_PROTOCOL,
  realtime,
} from '../../src/platform/realtime/index.ts';
import { bearer, createUser, grantRoles, signIn } from '../helpers/identity.ts';
import { eventually } from '../helpers/jobs-harness.ts';
import {
  closedWithin,
  JSON_PROTOCOL,
  startRealtimeHarness,
  TestSocket,
  type RealtimeHarness,
} from '../helpers/realtime.ts';

/** A fixture module: a public channel clients may publish on, a personal one, a permission one. */
const fixture = defineModule({
  name: 'rt-fixture',
  description: 'Realtime test channels and a command.',
  dependsOn: ['realtime'],
  channels: [
    defineChannel({
      name: 'fixture.lobby',
      description: 'Anyone may read; signed-in users may write short messages.',
      public: true,
      canPublish: (ctx) => ctx.userId !== null,
      publishSchema: Type.Object(
        { text: Type.String({ maxLength: 100 }) },
        { additionalProperties: false },
      ),
    }),
    defineChannel({
      name: 'fixture.user:*',
      description: 'One user’s own channel.',
      authorize: (ctx) => ctx.param === ctx.userId,
    }),
    defineChannel({
      name: 'fixture.room:*',
      description: 'Public rooms.',
      public: true,
    }),
    defineChannel({
      name: 'fixture.staff',
      description: 'Holders of roles:read (moderators).',
      permission: 'roles:read',
    }),
  ],
  async routes(_app, { platform }) {
    realtime(platform).addCommand(
      defineCommand({
        name: 'fixture.echo',
        description: 'Answers its payload.',
        payload: Type.Object(
          { word: Type.String({ minLength: 1, maxLength: 10 }) },
          { additionalProperties: false },
        ),
        handle: (payload, ctx) => Promise.resolve({ word: payload.word, userId: ctx.userId }),
      }),
    );
    realtime(platform).addCommand(
      defineCommand({
        name: 'fixture.admin',
        description: 'Needs roles:admin.',
        permission: 'roles:admin',
        payload: Type.Object({}),
        handle: () => Promise.resolve({ ok: true }),
      }),
    );
  },
});

let h: RealtimeHarness;
let platform: Platform;
const sockets: TestSocket[] = [];

async function open(options: Parameters<typeof TestSocket.open>[1] = {}): Promise<TestSocket> {
  const s = await TestSocket.open(h.base, options);
  sockets.push(s);
  return s;
}

async function signedIn(...roles: string[]) {
  const user = await createUser(h);
  if (roles.length > 0) await grantRoles(h, user.id, ...roles);
  const tokens = await signIn(h.app, user);
  return { user, tokens };
}

before(async () => {
  h = await startRealtimeHarness(
    {
      AUTH_JWT_PRIVATE_KEY: TEST_JWT_PRIVATE_KEY,
      REALTIME_AUTH_TIMEOUT_MS: '500',
      REALTIME_MESSAGES_PER_SECOND: '50',
      REALTIME_MAX_SUBSCRIPTIONS: '20',
      REALTIME_MAX_CONNECTIONS_PER_USER: '3',
      REALTIME_HEARTBEAT_INTERVAL_MS: '300',
      REALTIME_MAX_BUFFERED_BYTES: '65536',
      REALTIME_HISTORY_SIZE: '5',
    },
    [fixture],
  );
  platform = h.platform;
});

after(async () => {
  for (const s of sockets) s.ws.terminate();
  await h?.close();
});

describe('realtime: connecting and authenticating', () => {
  test('a signed-in user authenticates with an auth frame and is told who it is', async () => {
    const { user, tokens } = await signedIn();
    const s = await open();
    assert.equal(s.protocol, JSON_PROTOCOL);
    const ready = await s.auth(tokens.accessToken);
    assert.deepEqual(ready, { type: 'ready', userId: user.id });
  });

  test('the bearer.<token> subprotocol authenticates at the upgrade; the server never picks it', async () => {
    const { user, tokens } = await signedIn();
    const s = await open({ protocols: [JSON_PROTOCOL, `bearer.${tokens.accessToken}`] });
    assert.equal(s.protocol, JSON_PROTOCOL);
    assert.deepEqual(await s.next('ready'), { type: 'ready', userId: user.id });
  });

  test('no acceptable subprotocol: the upgrade is refused with 400', async () => {
    await assert.rejects(open({ protocols: ['chat'] }), (e: { status?: number; body?: string }) => {
      assert.equal(e.status, 400);
      assert.match(e.body ?? '', /SUBPROTOCOL_REQUIRED/);
      return true;
    });
  });

  test('a token in the query string is refused (400 TOKEN_IN_URL) and never logged', async () => {
    const { tokens } = await signedIn();
    // (`jwt=` is refused too, but the request log masks only the names it knows: see the report.)
    for (const name of ['token', 'access_token']) {
      await assert.rejects(
        open({ path: `/ws?${name}=${tokens.accessToken}` }),
        (e: { status?: number; body?: string }) => {
          assert.equal(e.status, 400);
          assert.match(e.body ?? '', /TOKEN_IN_URL/);
          return true;
        },
      );
    }
    assert.ok(!h.logs.text.includes(tokens.accessToken), 'the token is not in the logs');
  });

  test('no auth frame within REALTIME_AUTH_TIMEOUT_MS: closed with 1008', async () => {
    const s = await open();
    const { code } = await closedWithin(s, 5_000);
    assert.equal(code, 1008);
  });

  test('frames before auth are refused with 401 and change nothing', async () => {
    const s = await open();
    s.send({ type: 'subscribe', channel: 'fixture.lobby', id: 'x' });
    const error = await s.next('error');
    assert.equal(error.problem.status, 401);
    assert.equal(error.problem.code, 'UNAUTHORIZED');
  });

  test('an expired, a revoked or a tampered token: 401 INVALID_ACCESS_TOKEN, closed with 1008', async () => {
    const { tokens } = await signedIn();
    // Tampered: one character of the signature changed.
    const sig = tokens.accessToken.slice(-5);
    const tampered = `${tokens.accessToken.slice(0, -5)}${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`;
    // Revoked: the session logged out.
    const other = await signedIn();
    const out = await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/logout',
      headers: bearer(other.tokens.accessToken),
    });
    assert.ok(out.statusCode < 300, out.body);
    // Expired: signed by the real key, for the live session, with a lifetime in the past.
    const header = decodeProtectedHeader(tokens.accessToken);
    const claims = decodeJwt(tokens.accessToken);
    const now = Math.floor(Date.now() / 1000);
    const expired = await new SignJWT({ sid: claims.sid })
      .setProtectedHeader({ alg: 'EdDSA', kid: header.kid, typ: 'at+jwt' })
      .setSubject(claims.sub ?? '')
      .setIssuer(claims.iss ?? '')
      .setAudience(claims.aud ?? '')
      .setIssuedAt(now - 3_600)
      .setExpirationTime(now - 60)
      .sign(await importPKCS8(TEST_JWT_PRIVATE_KEY, 'EdDSA'));
    for (const token of [tampered, other.tokens.accessToken, expired]) {
      const s = await open();
      s.send({ type: 'auth', token });
      const error = await s.next('error');
      assert.equal(error.problem.status, 401);
      assert.equal(error.problem.code, 'INVALID_ACCESS_TOKEN');
      assert.equal((await closedWithin(s)).code, 1008);
      // The same token in the subprotocol is refused at the upgrade.
      await assert.rejects(
        open({ protocols: [JSON_PROTOCOL, `bearer.${token}`] }),
        (e: { status?: number }) => e.status === 401,
      );
    }
    assert.ok(!h.logs.text.includes(tampered));
  });

  test('anonymous: public channels only; a command needing a user answers 401', async () => {
    const s = await open();
    assert.deepEqual(await s.auth(), { type: 'ready', userId: null });
    assert.equal((await s.subscribe('fixture.lobby')).type, 'subscribed');
    const denied = await s.subscribe('fixture.staff');
    assert.equal(denied.type, 'error');
    const result = await s.command('fixture.echo', { word: 'hi' });
    assert.equal(result.type, 'error');
    assert.equal(result.type === 'error' && result.problem.code, 'UNAUTHORIZED');
  });

  test('connections per user are bounded: the next one gets 429 and 1008', async () => {
    const { tokens } = await signedIn();
    for (let i = 0; i < 3; i++) await (await open()).auth(tokens.accessToken);
    const s = await open();
    s.send({ type: 'auth', token: tokens.accessToken });
    const error = await s.next('error');
    assert.equal(error.problem.status, 429);
    assert.equal((await closedWithin(s)).code, 1008);
  });
});

describe('realtime: channels', () => {
  test('subscribing to another user’s channel or one that does not exist: the same 404', async () => {
    const { user, tokens } = await signedIn();
    const other = await createUser(h);
    const s = await open();
    await s.auth(tokens.accessToken);
    assert.equal((await s.subscribe(`fixture.user:${user.id}`)).type, 'subscribed');
    const theirs = await s.subscribe(`fixture.user:${other.id}`);
    const missing = await s.subscribe('nope.channel');
    const malformed = await s.subscribe('Not A Channel!');
    for (const f of [theirs, missing, malformed]) {
      assert.equal(f.type, 'error');
      if (f.type !== 'error') continue;
      assert.equal(f.problem.status, 404);
      assert.equal(f.problem.code, 'CHANNEL_NOT_FOUND');
      assert.equal(
        f.problem.detail,
        'No such channel, or not one this connection may subscribe to.',
      );
    }
  });

  test('the platform’s personal channel user:<id>: its owner only', async () => {
    const { user, tokens } = await signedIn();
    const other = await createUser(h);
    const s = await open();
    await s.auth(tokens.accessToken);
    assert.equal((await s.subscribe(`user:${user.id}`)).type, 'subscribed');
    assert.equal((await s.subscribe(`user:${other.id}`)).problem.code, 'CHANNEL_NOT_FOUND');
    const anonymous = await open();
    await anonymous.auth();
    assert.equal((await anonymous.subscribe(`user:${user.id}`)).problem.code, 'CHANNEL_NOT_FOUND');
    await realtime(platform).publish(`user:${user.id}`, 'fixture.note', { hello: 'you' });
    const event = await s.next('event');
    assert.deepEqual(event.data, { hello: 'you' });
  });

  test('a permission channel: 404 without the permission, subscribed with it', async () => {
    const plain = await signedIn();
    const admin = await signedIn('moderator');
    const a = await open();
    await a.auth(plain.tokens.accessToken);
    assert.equal((await a.subscribe('fixture.staff')).type, 'error');
    const b = await open();
    await b.auth(admin.tokens.accessToken);
    assert.equal((await b.subscribe('fixture.staff')).type, 'subscribed');
  });

  test('events published reach the subscribers of the channel only, with growing offsets', async () => {
    const { user, tokens } = await signedIn();
    const s = await open();
    await s.auth(tokens.accessToken);
    await s.subscribe(`fixture.user:${user.id}`);
    const hub = realtime(platform);
    const o1 = await hub.publish(`fixture.user:${user.id}`, 'fixture.hello', { n: 1 });
    await hub.publish('fixture.user:someone-else', 'fixture.hello', { n: 99 });
    const o2 = await hub.publish(`fixture.user:${user.id}`, 'fixture.hello', { n: 2 });
    assert.ok(o2 === o1 + 1);
    await eventually('two events', () => Promise.resolve(s.events().length === 2));
    assert.deepEqual(s.events(), [
      {
        type: 'event',
        channel: `fixture.user:${user.id}`,
        event: 'fixture.hello',
        data: { n: 1 },
        offset: o1,
      },
      {
        type: 'event',
        channel: `fixture.user:${user.id}`,
        event: 'fixture.hello',
        data: { n: 2 },
        offset: o2,
      },
    ]);
  });

  test('recovery: resubscribing with the last offset replays what was missed; too old gets a reset', async () => {
    const hub = realtime(platform);
    const channel = 'fixture.lobby';
    const first = await hub.publish(channel, 'fixture.tick', { n: 0 });
    const a = await open();
    await a.auth();
    await a.subscribe(channel);
    a.close();
    const offsets: number[] = [];
    for (let n = 1; n <= 3; n++) offsets.push(await hub.publish(channel, 'fixture.tick', { n }));
    const b = await open();
    await b.auth();
    const subscribed = await b.subscribe(channel, first);
    assert.equal(subscribed.type === 'subscribed' && subscribed.offset, offsets[2]);
    await eventually('the three missed events', () =>
      Promise.resolve(b.events(channel).length === 3),
    );
    assert.deepEqual(
      b.events(channel).map((e) => e.offset),
      offsets,
    );
    // History holds 5 (REALTIME_HISTORY_SIZE): 6 more and `first` is out of reach.
    for (let n = 4; n <= 9; n++) await hub.publish(channel, 'fixture.tick', { n });
    const c = await open();
    await c.auth();
    await c.subscribe(channel, first);
    const reset = await c.next('reset');
    assert.equal(reset.channel, channel);
    assert.equal(c.events(channel).length, 0, 'no partial replay after a reset');
    // An offset from the future is a reset too.
    const d = await open();
    await d.auth();
    await d.subscribe(channel, Number.MAX_SAFE_INTEGER);
    await d.next('reset');
  });

  test('client publish: allowed where the channel says, validated like a body', async () => {
    const { user, tokens } = await signedIn();
    const reader = await open();
    await reader.auth();
    await reader.subscribe('fixture.lobby');
    const s = await open();
    await s.auth(tokens.accessToken);
    s.send({ type: 'publish', channel: 'fixture.lobby', data: { text: 'hello' }, id: 'p1' });
    await s.next((f) => f.type === 'result' && f.id === 'p1');
    const event = await reader.next((f) => f.type === 'event' && f.event === 'publish');
    assert.deepEqual(event.data, { from: user.id, data: { text: 'hello' } });
    s.send({ type: 'publish', channel: 'fixture.lobby', data: { text: 1, extra: true }, id: 'p2' });
    const bad = await s.next((f) => f.type === 'error' && f.id === 'p2');
    assert.equal(bad.problem.status, 422);
    assert.equal(bad.problem.code, 'VALIDATION_FAILED');
    s.send({ type: 'publish', channel: `fixture.user:${user.id}`, data: {}, id: 'p3' });
    const denied = await s.next((f) => f.type === 'error' && f.id === 'p3');
    assert.equal(denied.problem.code, 'PUBLISH_NOT_ALLOWED');
    // Anonymous may read the lobby but not write to it.
    reader.send({ type: 'publish', channel: 'fixture.lobby', data: { text: 'x' }, id: 'p4' });
    assert.equal(
      (await reader.next((f) => f.type === 'error' && f.id === 'p4')).problem.status,
      403,
    );
  });

  test('10,000 subscriptions on one socket: at most REALTIME_MAX_SUBSCRIPTIONS held, the flood closed', async () => {
    const gauge = async () =>
      (await platform.metrics.getSingleMetric('realtime_subscriptions')?.get())?.values[0]?.value ??
      0;
    const held = await gauge();
    const s = await open();
    await s.auth();
    // The first 40 (under the frame rate limit): 20 held, 20 refused.
    for (let i = 0; i < 40; i++)
      s.send({ type: 'subscribe', channel: `fixture.room:r${i}`, id: `r${i}` });
    await eventually('40 answers', () =>
      Promise.resolve(
        s.frames.filter((f) => f.type === 'subscribed' || f.type === 'error').length >= 40,
      ),
    );
    const subscribed = s.frames.filter((f) => f.type === 'subscribed').length;
    const refused = s.frames.filter(
      (f) => f.type === 'error' && f.problem.code === 'TOO_MANY_SUBSCRIPTIONS',
    ).length;
    assert.equal(subscribed, 20, 'REALTIME_MAX_SUBSCRIPTIONS=20');
    assert.equal(refused, 20);
    assert.equal(await gauge(), held + 20);
    // The other 9,960 at once: ten times the frame rate limit closes the socket.
    for (let i = 40; i < 10_000; i++)
      s.send({ type: 'subscribe', channel: `fixture.room:r${i}`, id: `r${i}` });
    assert.equal((await closedWithin(s)).code, 1008);
    assert.equal(
      s.frames.filter((f) => f.type === 'subscribed').length,
      20,
      'none held past the bound',
    );
    await eventually('the subscriptions released', async () => (await gauge()) === held);
  });
});

describe('realtime: limits and bad frames', () => {
  test('10,000 frames in a second: RATE_LIMITED past the limit, then closed with 1008', async () => {
    const s = await open();
    await s.auth();
    for (let i = 0; i < 10_000; i++) s.send({ type: 'ping' });
    assert.equal((await closedWithin(s)).code, 1008);
    const limited = s.frames.filter((f) => f.type === 'error' && f.problem.code === 'RATE_LIMITED');
    assert.equal(limited.length, 1, 'told once');
    assert.equal(limited[0]?.type === 'error' && limited[0].problem.status, 429);
    assert.ok(s.frames.filter((f) => f.type === 'pong').length <= 50);
  });

  test('a 10 MB frame: closed with 1009 before it is buffered', async () => {
    const s = await open();
    await s.auth();
    s.ws.send(
      JSON.stringify({
        type: 'publish',
        channel: 'fixture.lobby',
        data: 'x'.repeat(10 * 1024 * 1024),
      }),
    );
    assert.equal((await closedWithin(s)).code, 1009);
  });

  test('a binary frame on the JSON subprotocol, unknown frame types and broken JSON: 400s, socket kept', async () => {
    const s = await open();
    await s.auth();
    s.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    const binary = await s.next('error');
    assert.equal(binary.problem.code, 'MALFORMED_FRAME');
    assert.equal(binary.problem.status, 400);
    const from = s.frames.length;
    s.send({ type: 'teleport', id: 't1' });
    const unknown = await s.next((f) => f.type === 'error', 5_000, from);
    assert.equal(unknown.type === 'error' && unknown.problem.code, 'UNKNOWN_FRAME_TYPE');
    assert.equal(unknown.type === 'error' && unknown.id, 't1');
    const from2 = s.frames.length;
    s.ws.send('{not json');
    const broken = await s.next((f) => f.type === 'error', 5_000, from2);
    assert.equal(broken.type === 'error' && broken.problem.code, 'MALFORMED_FRAME');
    s.send({ type: 'ping' });
    await s.next('pong');
  });

  test('a text frame on the Protobuf subprotocol and invalid Protobuf bytes: MALFORMED_FRAME', async () => {
    const s = await open({ protocols: [PROTOBUF_PROTOCOL] });
    assert.equal(s.protocol, PROTOBUF_PROTOCOL);
    s.send({ type: 'auth' });
    await s.next('ready');
    s.ws.send('{"type":"ping"}');
    const text = await s.next('error');
    assert.equal(text.problem.code, 'MALFORMED_FRAME');
    const from = s.frames.length;
    s.ws.send(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]), { binary: true });
    const bytes = await s.next((f) => f.type === 'error', 5_000, from);
    assert.equal(bytes.type === 'error' && bytes.problem.code, 'MALFORMED_FRAME');
    assert.equal(bytes.type === 'error' && bytes.problem.status, 400);
  });

  test('a client that never reads is disconnected (1013) instead of growing the server’s memory', async () => {
    const s = await open();
    await s.auth();
    await s.subscribe('fixture.room:flood');
    const dropped = async () =>
      (await platform.metrics.getSingleMetric('realtime_slow_consumers_dropped_total')?.get())
        ?.values[0]?.value ?? 0;
    const before = await dropped();
    // Stop reading: the kernel buffers fill, then the server's send buffer grows.
    const raw = (s.ws as unknown as { _socket: Socket })._socket;
    raw.pause();
    const hub = realtime(platform);
    const big = 'y'.repeat(8_000);
    for (let i = 0; i < 2_000 && (await dropped()) === before; i++) {
      await hub.publish('fixture.room:flood', 'fixture.big', { big });
      if (i % 50 === 0) await sleep(5);
    }
    await eventually('the slow consumer dropped', async () => (await dropped()) > before);
    raw.resume();
    const { code } = await closedWithin(s);
    assert.ok(code === 1013 || code === 1006, `closed (${code})`);
  });

  test('a peer that stops answering pings is cut off by the heartbeat', async () => {
    const s = await open();
    await s.auth();
    // ws answers pings automatically; stop it from doing so.
    (s.ws as unknown as { pong: () => void }).pong = () => undefined;
    const raw = (s.ws as unknown as { _receiver: { removeAllListeners(e: string): void } })
      ._receiver;
    raw.removeAllListeners('ping');
    const { code } = await closedWithin(s, 5_000);
    assert.equal(code, 1006, 'terminated, no closing handshake');
  });
});

describe('realtime: commands', () => {
  test('a command runs and answers result with its id', async () => {
    const { user, tokens } = await signedIn();
    const s = await open();
    await s.auth(tokens.accessToken);
    const r = await s.command('fixture.echo', { word: 'hello' }, 'e1');
    assert.deepEqual(r, { type: 'result', id: 'e1', payload: { word: 'hello', userId: user.id } });
  });

  test('a payload failing validation: the problem body HTTP’s 422 would carry', async () => {
    const { tokens } = await signedIn();
    const s = await open();
    await s.auth(tokens.accessToken);
    const r = await s.command('fixture.echo', { word: '', extra: 1 }, 'e2');
    assert.equal(r.type, 'error');
    if (r.type !== 'error') return;
    assert.equal(r.problem.status, 422);
    assert.equal(r.problem.code, 'VALIDATION_FAILED');
    assert.equal(r.problem.type, 'urn:groundwork:problem:validation-failed');
    assert.equal(r.problem.detail, 'The request does not match the schema.');
    assert.deepEqual(r.problem.errors, [
      { path: '/body/word', message: 'must NOT have fewer than 1 characters' },
    ]);
    const unknown = await s.command('fixture.nothing', {}, 'e3');
    assert.equal(unknown.type === 'error' && unknown.problem.code, 'UNKNOWN_COMMAND');
    const forbidden = await s.command('fixture.admin', {}, 'e4');
    assert.equal(forbidden.type === 'error' && forbidden.problem.status, 403);
  });
});

describe('realtime: revocation and shutdown', () => {
  test('a session revoked while subscribed: the socket is closed with 1008 at once', async () => {
    const { user, tokens } = await signedIn();
    const s = await open();
    await s.auth(tokens.accessToken);
    await s.subscribe(`fixture.user:${user.id}`);
    const started = Date.now();
    const res = await h.app.inject({
      method: 'POST',
      url: '/api/v1/auth/logout',
      headers: bearer(tokens.accessToken),
    });
    assert.ok(res.statusCode < 300, res.body);
    const { code, reason } = await closedWithin(s, 10_000);
    assert.equal(code, 1008);
    assert.equal(reason, 'session revoked');
    assert.ok(Date.now() - started < 10_000);
  });

  test('a role taken away: its permission channel is unsubscribed', async () => {
    const { user, tokens } = await signedIn('moderator');
    const s = await open();
    await s.auth(tokens.accessToken);
    assert.equal((await s.subscribe('fixture.staff')).type, 'subscribed');
    await h.tdb.database.pool.query(`delete from gw_user_role where user_id = $1`, [user.id]);
    await platform.access.invalidateUsers([user.id]);
    await realtime(platform).recheckUsers([user.id]);
    await s.next((f) => f.type === 'unsubscribed' && f.channel === 'fixture.staff');
  });

  test('metrics: connections, subscriptions, messages in and out by type, fan-out lag', async () => {
    const text = await platform.metrics.metrics();
    for (const name of [
      'realtime_connections',
      'realtime_subscriptions',
      'realtime_messages_in_total{type="subscribe"}',
      'realtime_messages_out_total{type="event"}',
      'realtime_slow_consumers_dropped_total',
      'realtime_fanout_lag_seconds_bucket',
    ])
      assert.ok(text.includes(name), name);
  });

  test('logs carry neither tokens nor message bodies', () => {
    const jwt = /eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/.exec(h.logs.text);
    assert.equal(
      jwt,
      null,
      `no JWT in the logs: ${h.logs.raw.find((l) => jwt && l.includes(jwt[0])) ?? ''}`,
    );
    assert.ok(!h.logs.text.includes('hello'), 'no frame body in the logs');
  });

  test('shutdown: every socket gets 1001', async () => {
    const s = await open();
    await s.auth();
    realtime(platform).goAway();
    assert.equal((await closedWithin(s)).code, 1001);
    await assert.rejects(open(), (e: { status?: number }) => e.status === 503);
  });
});
