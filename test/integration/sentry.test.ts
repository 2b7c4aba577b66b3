import assert from 'node:assert/strict';
import * as Sentry from '@sentry/node';
import { createServer, type IncomingMessage } from 'node:http';
import { describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { buildTestApp } from '../helpers/app.ts';
import { testkitApp } from '../helpers/testkit-app.ts';

/** A local stand-in for Sentry's ingest: accepts envelopes on /api/<project>/envelope/. */
async function fakeSentry() {
  const envelopes: string[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      if (req.url?.startsWith('/api/42/envelope/')) envelopes.push(body.toString('utf8'));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    envelopes,
    dsn: `http://publickey@127.0.0.1:${port}/42`,
    close: () => new Promise((r) => server.close(r)),
  };
}

describe('error tracking', () => {
  // Runs first: Sentry's client is process-global once initialised.
  test('without SENTRY_DSN the SDK is never initialised, so nothing can be sent', async (t) => {
    const { app } = await buildTestApp({}, { apps: [testkitApp] });
    t.after(() => app.close());
    const res = await app.inject({ method: 'GET', url: '/api/v1/boom' });
    assert.equal(res.statusCode, 500);
    assert.equal(Sentry.getClient(), undefined);
  });

  test('with SENTRY_DSN, 5xx errors are sent with the request id; 4xx are not', async (t) => {
    const sentry = await fakeSentry();
    t.after(() => sentry.close());
    const { app } = await buildTestApp({ SENTRY_DSN: sentry.dsn }, { apps: [testkitApp] });
    const res = await app.inject({
      method: 'GET',
      url: '/api/v1/boom',
      headers: { 'x-request-id': 'sentry-req-1' },
    });
    assert.equal(res.statusCode, 500);
    await app.inject({ method: 'GET', url: '/api/v1/nope' });
    await app.inject({ method: 'POST', url: '/api/v1/echo', payload: {} });
    await app.close(); // flushes
    assert.equal(sentry.envelopes.filter((e) => e.includes('"exception"')).length, 1);
    const event = sentry.envelopes.find((e) => e.includes('"exception"')) ?? '';
    assert.match(event, /connection to postgres/);
    assert.match(event, /sentry-req-1/);
  });
});
