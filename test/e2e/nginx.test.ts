/**
 * End-to-end: Debian's nginx with deploy/nginx/ (rendered with loopback ports, a self-signed
 * certificate made now and temporary paths) in front of a real server process (`all`, trusting
 * 127.0.0.1 as its proxy). Clients connect from 127.0.0.7, so the address the server reports
 * tells the client's from the proxy's.
 *
 * Checks: the committed file's limits against the server's config schema; `nginx -t` of the file
 * as committed with only the certificate (and log) paths changed; the client IP, scheme, host
 * and request id the server sees (a fixture route, the sessions list, the server's and nginx's
 * logs); 413 from nginx and from the server; 504 from a slow upstream; a WebSocket through the
 * proxy; the HTTP→HTTPS redirect; HSTS once; gzip and static caching.
 *
 * Needs nginx (/usr/sbin/nginx, or NGINX_PATH) and the openssl CLI: skipped with the reason
 * without them, except with REQUIRE_NGINX=1 (CI), where their absence fails.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { allApps } from '../../src/apps/index.ts';
import { ConfigSchema, parseDuration } from '../../src/platform/config/index.ts';
import { FilesConfig } from '../../src/platform/files/settings.ts';
import { REALTIME_DEFAULTS } from '../../src/platform/realtime/settings.ts';
import { testConfig } from '../helpers/app.ts';
import { startServer } from '../helpers/chaos.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { createUser } from '../helpers/identity.ts';
import {
  call,
  CLIENT_IP,
  headerValues,
  HOST,
  needsNginx,
  NGINX_DIR,
  nginxBytes,
  nginxMs,
  nginxTest,
  only,
  openSocket,
  parseNginx,
  prepareNginx,
  renderConfig,
  startNginx,
  type Directive,
} from '../helpers/nginx.ts';

const fixtures = ['../fixtures/slow-route.ts', '../fixtures/cluster-app.ts'].map((p) =>
  fileURLToPath(new URL(p, import.meta.url)),
);

/** The default of a platform setting, from the config schema. */
function schemaDefault(key: string): number {
  const value = (ConfigSchema.properties as Record<string, { default?: unknown }>)[key]?.default;
  assert.equal(typeof value, 'number', `${key} has a numeric default`);
  return value as number;
}

const committed = () => parseNginx(readFileSync(join(NGINX_DIR, 'groundwork.conf'), 'utf8'));
const serverBlock = (conf: Directive[]) => {
  const tls = conf.find(
    (d) =>
      d.name === 'server' && d.block?.some((l) => l.name === 'listen' && l.args.includes('ssl')),
  );
  assert.ok(tls?.block, 'an HTTPS server block');
  return tls.block;
};
const location = (block: Directive[], ...args: string[]) => {
  const found = block.find(
    (d) => d.name === 'location' && JSON.stringify(d.args) === JSON.stringify(args),
  );
  assert.ok(found?.block, `location ${args.join(' ')}`);
  return found.block;
};

// The file's limits against the server's (no nginx needed: runs everywhere).
test("the committed nginx config's limits match the server's config schema", () => {
  const conf = committed();
  const server = serverBlock(conf);
  // Bodies: nginx refuses exactly what the server's default refuses.
  assert.equal(
    nginxBytes(only(server, 'client_max_body_size')[0] ?? ''),
    schemaDefault('BODY_LIMIT_BYTES'),
  );
  // A request line of MAX_URL_LENGTH fits nginx's buffer, so the server answers 414 itself.
  const [, buffer = ''] = only(server, 'large_client_header_buffers');
  assert.ok(nginxBytes(buffer) > schemaDefault('MAX_URL_LENGTH') + 64);
  assert.ok(
    nginxMs(only(server, 'client_header_timeout')[0] ?? '') <= schemaDefault('HEADERS_TIMEOUT_MS'),
  );
  assert.ok(
    nginxMs(only(server, 'client_body_timeout')[0] ?? '') <= schemaDefault('REQUEST_TIMEOUT_MS'),
  );
  // The server's handler timeout answers first (503 problem+json); nginx's 504 is the backstop.
  const read = nginxMs(only(server, 'proxy_read_timeout')[0] ?? '');
  assert.ok(read > schemaDefault('HANDLER_TIMEOUT_MS'), 'proxy_read_timeout > HANDLER_TIMEOUT_MS');
  // Retries happen only before a slow request could have timed out.
  assert.ok(nginxMs(only(server, 'proxy_next_upstream_timeout')[0] ?? '') < read);
  assert.deepEqual(only(server, 'proxy_next_upstream'), ['error', 'timeout']);
  // nginx closes idle upstream connections before the server would.
  const upstream = conf.find((d) => d.name === 'upstream')?.block;
  assert.ok(
    nginxMs(only(upstream, 'keepalive_timeout')[0] ?? '') < schemaDefault('KEEP_ALIVE_TIMEOUT_MS'),
    'upstream keepalive_timeout < KEEP_ALIVE_TIMEOUT_MS',
  );
  assert.ok(Number(only(upstream, 'keepalive')[0]) > 0);
  // The WebSocket outlives the server's heartbeat interval.
  const ws = location(server, '=', '/ws');
  assert.ok(
    nginxMs(only(ws, 'proxy_read_timeout')[0] ?? '') > REALTIME_DEFAULTS.heartbeatIntervalMs * 2,
  );
  const headers = (block: Directive[]) =>
    block.filter((d) => d.name === 'proxy_set_header').map((d) => d.args.join(' '));
  assert.deepEqual(headers(ws), ['Upgrade $http_upgrade', 'Connection $gw_connection_upgrade']);
  // Every other proxying location keeps upstream connections alive, with the shared headers.
  const proxying = server.filter(
    (d) => d.name === 'location' && d.block?.some((l) => l.name === 'proxy_pass'),
  );
  assert.ok(proxying.length >= 5);
  for (const loc of proxying) {
    assert.deepEqual(only(loc.block, 'include'), ['snippets/groundwork-proxy.conf']);
    assert.deepEqual(only(loc.block, 'proxy_pass'), ['http://groundwork']);
    if (loc !== server.find((d) => d.block === ws))
      assert.deepEqual(headers(loc.block ?? []), ['Connection ']);
  }
  // Uploads: the largest file purpose of any shipped app, and the upload deadline.
  const largest = Math.max(
    ...allApps.flatMap((m) => (m.filePurposes ?? []).map((p) => p.maxBytes)),
    20 * 1024 * 1024,
  );
  const uploadMs =
    parseDuration(
      (FilesConfig.properties.FILES_UPLOAD_TIMEOUT as unknown as { default: string }).default,
    ) * 1000;
  for (const upload of [
    location(server, '=', '/api/v1/files'),
    location(server, '/api/v1/storage/objects/'),
  ]) {
    assert.ok(nginxBytes(only(upload, 'client_max_body_size')[0] ?? '') > largest);
    assert.deepEqual(only(upload, 'proxy_request_buffering'), ['off']);
    assert.ok(nginxMs(only(upload, 'proxy_read_timeout')[0] ?? '') > uploadMs);
  }
});

describe('nginx in front of the server', { ...needsNginx(), timeout: 120_000 }, () => {
  let tdb: TestDatabase;
  before(async () => {
    tdb = await createTestDatabase();
  });
  after(() => tdb?.drop());

  test('nginx -t accepts the file as committed, with only the certificate and log paths changed', async (t) => {
    const prepared = await prepareNginx(t, { upstreams: [] });
    // Re-render from the committed text: upstreams, listeners, static and ACME roots as shipped.
    const site = renderConfig(readFileSync(join(NGINX_DIR, 'groundwork.conf'), 'utf8'), {
      TLS_CERT: prepared.cert.certFile,
      TLS_KEY: prepared.cert.keyFile,
      ACCESS_LOG: join(prepared.dir, 'groundwork.access.log'),
    });
    writeFileSync(join(prepared.dir, 'conf.d', 'groundwork.conf'), site);
    const output = await nginxTest(prepared.dir);
    assert.match(output, /syntax is ok/);
    assert.match(output, /test is successful/);
    assert.doesNotMatch(output, /\[(warn|emerg)\]/, output);
  });

  test('client IP, limits, timeouts, WebSocket, redirect and HSTS through nginx', async (t) => {
    const server = await startServer(t, {
      role: 'all',
      preload: fixtures,
      env: {
        DATABASE_URL: tdb.url,
        APPS: 'cluster-fixture',
        TRUST_PROXY: '127.0.0.1',
        RATE_LIMIT_ANONYMOUS_PER_MIN: '1000',
        EVENTS_POLL_INTERVAL_MS: '200',
      },
      startTimeoutMs: 60_000,
    });
    const nginx = await startNginx(t, {
      upstreams: [`127.0.0.1:${String(server.port)}`],
      // The one timing changed for the test: 2 s instead of 35 s, so the 504 comes quickly.
      render: { API_READ_TIMEOUT: '2s' },
      staticFiles: {
        'index.html': '<!doctype html><title>Groundwork</title>',
        'assets/index-3f2a.js': `console.log(${JSON.stringify('x'.repeat(4000))});`,
      },
    });
    assert.match(nginx.testOutput, /test is successful/);

    await t.test('the client IP, scheme, host and request id the server sees', async () => {
      const whoami = await call(nginx, '/api/v1/cluster/whoami');
      assert.equal(whoami.status, 200, whoami.body);
      const seen = whoami.json<{ ip: string; protocol: string; host: string; requestId: string }>();
      assert.equal(seen.ip, CLIENT_IP, "the client's address, not nginx's 127.0.0.1");
      assert.equal(seen.protocol, 'https');
      assert.equal(seen.host, HOST);
      // nginx's id reaches the server and comes back once.
      assert.deepEqual(headerValues(whoami, 'x-request-id'), [seen.requestId]);
      assert.match(seen.requestId, /^[0-9a-f]{32}$/);
      // A client-written X-Forwarded-For is ignored; a safe client request id is kept.
      const forged = await call(nginx, '/api/v1/cluster/whoami', {
        headers: { 'x-forwarded-for': '203.0.113.9', 'x-request-id': 'client-id.42' },
      });
      assert.equal(forged.json<{ ip: string }>().ip, CLIENT_IP);
      assert.equal(forged.json<{ requestId: string }>().requestId, 'client-id.42');
      // An unsafe one is replaced (by nginx, with the server's own rule).
      const unsafe = await call(nginx, '/api/v1/cluster/whoami', {
        headers: { 'x-request-id': 'a b<script>' },
      });
      assert.match(unsafe.json<{ requestId: string }>().requestId, /^[0-9a-f]{32}$/);
      // The server's completion line and nginx's access line carry that id and the client IP.
      await sleep(200);
      const line = server
        .logs()
        .find((l) => l.msg === 'request completed' && l.requestId === seen.requestId);
      assert.equal(line?.ip, CLIENT_IP, JSON.stringify(line));
      const access = nginx.accessLog().find((l) => l.requestId === seen.requestId);
      assert.equal(access?.remoteAddr, CLIENT_IP);
      assert.equal(access?.upstream, `127.0.0.1:${String(server.port)}`);
    });

    let accessToken = '';
    await t.test('a real route: the session records the client IP', async () => {
      const user = await createUser({ tdb, config: testConfig() });
      const login = await call(nginx, '/api/v1/auth/login', {
        method: 'POST',
        body: JSON.stringify({ login: user.email, password: user.password }),
      });
      assert.equal(login.status, 200, login.body);
      accessToken = login.json<{ accessToken: string }>().accessToken;
      const sessions = await call(nginx, '/api/v1/auth/sessions', {
        headers: { authorization: `Bearer ${accessToken}` },
      });
      assert.equal(sessions.status, 200, sessions.body);
      const items = sessions.json<{ items: { ip: string; current: boolean }[] }>().items;
      assert.deepEqual(
        items.map((s) => s.ip),
        [CLIENT_IP],
      );
    });

    await t.test(
      '413: nginx refuses a body over BODY_LIMIT_BYTES, the server a route’s smaller limit',
      async () => {
        const huge = await call(nginx, '/api/v1/cluster/jobs', {
          method: 'POST',
          body: JSON.stringify({ tag: 'x'.repeat(1_100_000), n: 1 }),
        });
        assert.equal(huge.status, 413);
        assert.equal(huge.headers['content-type'], 'application/problem+json');
        const fromNginx = huge.json<{ code: string; requestId: string }>();
        assert.equal(fromNginx.code, 'PAYLOAD_TOO_LARGE');
        assert.deepEqual(headerValues(huge, 'x-request-id'), [fromNginx.requestId]);
        assert.equal(headerValues(huge, 'strict-transport-security').length, 1);
        // Sign-in takes 16 KiB: 20 KiB passes nginx and is refused by the server.
        const big = await call(nginx, '/api/v1/auth/login', {
          method: 'POST',
          body: JSON.stringify({ login: 'someone', password: 'p'.repeat(20_000) }),
        });
        assert.equal(big.status, 413, big.body);
        assert.match(String(big.headers['content-type']), /^application\/problem\+json/);
        const fromServer = big.json<{ code: string; requestId: string }>();
        assert.equal(fromServer.code, 'PAYLOAD_TOO_LARGE');
        await sleep(200);
        const lines = nginx.accessLog();
        const nginxLine = lines.find((l) => l.requestId === fromNginx.requestId);
        const serverLine = lines.find((l) => l.requestId === fromServer.requestId);
        assert.equal(nginxLine?.upstream, '', 'answered by nginx: never sent upstream');
        assert.equal(serverLine?.upstreamStatus, '413', 'answered by the server');
      },
    );

    await t.test('504: a slow upstream times out at proxy_read_timeout', async () => {
      const started = performance.now();
      const slow = await call(nginx, '/test/slow?ms=6000');
      const ms = performance.now() - started;
      assert.equal(slow.status, 504, slow.body);
      assert.equal(slow.headers['content-type'], 'application/problem+json');
      assert.equal(slow.json<{ code: string }>().code, 'GATEWAY_TIMEOUT');
      assert.ok(ms >= 1_900 && ms < 5_500, `after the 2 s read timeout (${ms.toFixed(0)} ms)`);
      // A fast one on the same path is fine.
      assert.equal((await call(nginx, '/test/slow?ms=10')).status, 200);
    });

    await t.test('a WebSocket through the proxy: handshake, auth, ping, revocation', async () => {
      const socket = await openSocket(nginx);
      assert.equal(socket.ws.protocol, 'groundwork.v1.json');
      socket.send({ type: 'auth', token: accessToken });
      assert.ok((await socket.next('ready')).userId);
      socket.send({ type: 'ping' });
      await socket.next('pong');
      // Signing out closes the socket from the server side, through nginx.
      const out = await call(nginx, '/api/v1/auth/logout', {
        method: 'POST',
        headers: { authorization: `Bearer ${accessToken}` },
      });
      assert.ok(out.status < 300, out.body);
      const close = await Promise.race([
        socket.closed,
        sleep(15_000).then(() => assert.fail('socket not closed after sign-out')),
      ]);
      assert.deepEqual(close, { code: 1008, reason: 'session revoked' });
    });

    await t.test('HTTP → HTTPS: 301 with path and query, no HSTS on plain HTTP', async () => {
      const plain = await call(nginx, '/api/v1/cluster/whoami?a=1&b=two%20words', { plain: true });
      assert.equal(plain.status, 301);
      assert.equal(
        plain.headers.location,
        `https://${HOST}/api/v1/cluster/whoami?a=1&b=two%20words`,
      );
      assert.deepEqual(headerValues(plain, 'strict-transport-security'), []);
      // ACME challenges are served on plain HTTP.
      mkdirSync(join(nginx.dir, 'acme', '.well-known', 'acme-challenge'), { recursive: true });
      writeFileSync(join(nginx.dir, 'acme', '.well-known', 'acme-challenge', 'tok'), 'proof');
      const acme = await call(nginx, '/.well-known/acme-challenge/tok', { plain: true });
      assert.equal(acme.status, 200);
      assert.equal(acme.body, 'proof');
    });

    await t.test(
      'HSTS once on HTTPS answers; gzip; static caching; /metrics not exposed',
      async () => {
        const api = await call(nginx, '/openapi.json', { headers: { 'accept-encoding': 'gzip' } });
        assert.equal(api.status, 200);
        assert.deepEqual(headerValues(api, 'strict-transport-security'), [
          'max-age=31536000; includeSubDomains',
        ]);
        assert.equal(api.headers['content-encoding'], 'gzip');
        assert.match(String(api.headers.vary), /Accept-Encoding/);
        const asset = await call(nginx, '/assets/index-3f2a.js', {
          headers: { 'accept-encoding': 'gzip' },
        });
        assert.equal(asset.status, 200);
        assert.equal(asset.headers['cache-control'], 'public, max-age=31536000, immutable');
        assert.equal(asset.headers['content-encoding'], 'gzip');
        assert.equal(headerValues(asset, 'strict-transport-security').length, 1);
        const page = await call(nginx, '/');
        assert.equal(page.status, 200);
        assert.equal(page.headers['cache-control'], 'no-cache');
        assert.ok(page.headers.etag);
        // Paths the build does not have go to the server.
        const missing = await call(nginx, '/assets/nope.js');
        assert.equal(missing.status, 404);
        assert.match(String(missing.headers['content-type']), /^application\/problem\+json/);
        const metrics = await call(nginx, '/metrics');
        assert.equal(metrics.status, 404);
      },
    );

    assert.doesNotMatch(nginx.errorLog(), /\[(emerg|alert|crit)\]/);
  });
});
