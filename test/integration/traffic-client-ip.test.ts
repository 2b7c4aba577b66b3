import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildTestApp, LogCapture } from '../helpers/app.ts';
import { createLogger } from '../../src/platform/observability/index.ts';

/** An app whose `/api/v1/ip` echoes the client IP the platform settled on. */
async function ipApp(overrides: Record<string, string>) {
  return buildTestApp(overrides, {
    setup: (app) => {
      app.get('/api/v1/ip', async (request) => ({ ip: request.ip }));
    },
  });
}

describe('client IP', () => {
  test('X-Forwarded-For from an untrusted peer is ignored', async () => {
    const { app, logs } = await ipApp({ TRUST_PROXY: '10.0.0.0/8' });
    try {
      const res = await app.inject({
        url: '/api/v1/ip',
        remoteAddress: '192.0.2.44',
        headers: { 'x-forwarded-for': '1.2.3.4' },
      });
      assert.deepEqual(res.json(), { ip: '192.0.2.44' });
      // The completion log line records the same address.
      const line = logs.lines.find((l) => l.requestId === res.headers['x-request-id']);
      assert.equal(line?.ip, '192.0.2.44');
    } finally {
      await app.close();
    }
  });

  test('through trusted proxies the rightmost untrusted address is the client', async () => {
    const { app } = await ipApp({ TRUST_PROXY: '10.0.0.0/8, 127.0.0.1' });
    try {
      const ip = async (xff: string, remoteAddress = '10.0.0.2') =>
        (
          await app.inject({
            url: '/api/v1/ip',
            remoteAddress,
            headers: { 'x-forwarded-for': xff },
          })
        ).json<{ ip: string }>().ip;
      assert.equal(await ip('203.0.113.9'), '203.0.113.9');
      // A client that prepends its own fake entry does not get to choose.
      assert.equal(await ip('6.6.6.6, 203.0.113.9'), '203.0.113.9');
      // Trusted hops after the client are skipped.
      assert.equal(await ip('6.6.6.6, 203.0.113.9, 10.1.2.3, 10.0.0.7'), '203.0.113.9');
      // A chain of only trusted hops ends at the leftmost entry.
      assert.equal(await ip('10.9.9.9, 10.0.0.7'), '10.9.9.9');
    } finally {
      await app.close();
    }
  });

  test('a hop count trusts that many proxies', async () => {
    const { app } = await ipApp({ TRUST_PROXY: '1' });
    try {
      const res = await app.inject({
        url: '/api/v1/ip',
        remoteAddress: '10.0.0.2',
        headers: { 'x-forwarded-for': '6.6.6.6, 203.0.113.9' },
      });
      assert.equal(res.json<{ ip: string }>().ip, '203.0.113.9');
    } finally {
      await app.close();
    }
  });

  test('rate limits key on the settled address: spoofed headers buy no new budget', async () => {
    const { app } = await buildTestApp(
      { TRUST_PROXY: '10.0.0.0/8', RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_ANONYMOUS_PER_MIN: '2' },
      {
        setup: (a) => {
          a.get('/api/v1/ip', async (request) => ({ ip: request.ip }));
        },
      },
    );
    try {
      const spoof = (n: number) =>
        app.inject({
          url: '/api/v1/ip',
          remoteAddress: '192.0.2.50',
          headers: { 'x-forwarded-for': `1.1.1.${String(n)}` },
        });
      assert.equal((await spoof(1)).statusCode, 200);
      assert.equal((await spoof(2)).statusCode, 200);
      assert.equal((await spoof(3)).statusCode, 429);
      // Two real clients behind the trusted proxy have a budget each.
      const viaProxy = (client: string) =>
        app.inject({
          url: '/api/v1/ip',
          remoteAddress: '10.0.0.2',
          headers: { 'x-forwarded-for': client },
        });
      for (const client of ['203.0.113.1', '203.0.113.2']) {
        assert.equal((await viaProxy(client)).statusCode, 200);
        assert.equal((await viaProxy(client)).statusCode, 200);
        assert.equal((await viaProxy(client)).statusCode, 429);
      }
    } finally {
      await app.close();
    }
  });

  test('production without TRUST_PROXY warns at start', async () => {
    const logs = new LogCapture();
    const logger = createLogger({ level: 'info', destination: logs });
    const { app } = await buildTestApp(
      {
        APP_ENV: 'production',
        APP_SECRET: 'k3J9x!qPz7Lw2Vb8Nc4Rt6Ym1Hs5Dg0Fa',
        DATABASE_URL: 'postgres://127.0.0.1:5432/test',
        SMTP_URL: 'smtp://127.0.0.1:2525',
        MAIL_FROM: 'Example <no-reply@example.com>',
        PUBLIC_URL: 'https://api.example.com',
      },
      { logger },
    );
    await app.close();
    assert.ok(logs.lines.some((l) => l.level === 40 || l.level === 'warn'));
    assert.match(logs.text, /TRUST_PROXY is not set/);
  });
});
