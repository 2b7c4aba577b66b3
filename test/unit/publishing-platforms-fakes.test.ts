// `npm run fake-platforms` and the fakes' control API: the script prints the settings that point
// the adapters at the fakes, one KEY=value a line, and serves until SIGINT; switches set over HTTP
// (probabilistic modes included) change the answers, and /_fake/posts lists what was received.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { test } from 'node:test';

const KEYS = [
  'FAKE_PLATFORMS_URL',
  ...['INSTAGRAM', 'FACEBOOK', 'YOUTUBE'].flatMap((p) =>
    ['API_URL', 'AUTH_URL', 'CLIENT_ID', 'CLIENT_SECRET', 'TOKEN_URL'].map(
      (k) => `PUBLISHING_${p}_${k}`,
    ),
  ),
].sort();

test('npm run fake-platforms prints every KEY=value, serves the control API, stops on SIGINT', async (t) => {
  const child = spawn(process.execPath, ['scripts/fake-platforms.ts'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const lines = createInterface({ input: child.stdout });
  const env: Record<string, string> = {};
  for await (const line of lines) {
    const match = /^([A-Z_]+)=(.+)$/.exec(line);
    assert.ok(match, `not a KEY=value line: ${line}`);
    env[match[1]!] = match[2]!;
    if (Object.keys(env).length === KEYS.length) break;
  }
  assert.deepEqual(Object.keys(env).sort(), KEYS);
  const base = env.FAKE_PLATFORMS_URL!;
  assert.match(base, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.ok(env.PUBLISHING_YOUTUBE_API_URL!.startsWith(base));

  // Consent approved without a page: straight back to the redirect URI with a code and the state.
  const authorize = new URL(env.PUBLISHING_FACEBOOK_AUTH_URL!);
  authorize.search = new URLSearchParams({
    client_id: env.PUBLISHING_FACEBOOK_CLIENT_ID!,
    redirect_uri: 'http://localhost/callback',
    state: 'st',
    code_challenge: 'x'.repeat(43),
    code_challenge_method: 'S256',
  }).toString();
  const consent = await fetch(authorize, { redirect: 'manual' });
  assert.equal(consent.status, 302);
  const back = new URL(consent.headers.get('location') ?? '');
  assert.equal(back.searchParams.get('state'), 'st');
  assert.ok(back.searchParams.get('code'));

  // Switches over HTTP, a probabilistic mode included.
  const set = await fetch(`${base}/_fake/switches`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ platform: 'facebook', switches: { consentDenied: true } }),
  });
  assert.equal(set.status, 200);
  const denied = await fetch(authorize, { redirect: 'manual' });
  assert.equal(
    new URL(denied.headers.get('location') ?? '').searchParams.get('error'),
    'access_denied',
  );
  const rate = await fetch(`${base}/_fake/switches`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      reset: true,
      switches: { transientRate: 0.01, timeoutAfterCreateRate: 0.005 },
    }),
  });
  const switches = (await rate.json()) as Record<string, Record<string, unknown>>;
  assert.equal(switches.youtube?.transientRate, 0.01);
  assert.equal(switches.facebook?.consentDenied, undefined, 'reset first');

  const posts = await fetch(`${base}/_fake/posts`);
  assert.deepEqual(Object.keys((await posts.json()) as object).sort(), [
    'facebook',
    'instagram',
    'youtube',
  ]);

  child.kill('SIGINT');
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 0);
});
