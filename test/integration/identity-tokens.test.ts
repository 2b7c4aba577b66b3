import assert from 'node:assert/strict';
import { createPrivateKey, sign } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { SignJWT, importPKCS8 } from 'jose';
import { KeyRing, identitySettings } from '../../src/platform/identity/index.ts';
import { TEST_JWT_PRIVATE_KEY } from '../helpers/app.ts';
import { withSpareBits } from '../helpers/base64url.ts';
import type { MailHarness } from '../helpers/mail.ts';
import { bearer, createUser, signIn, startIdentityHarness } from '../helpers/identity.ts';
import { assertProblem } from '../helpers/problem.ts';

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('identity: access and refresh tokens are refused unless canonical and well shaped', () => {
  let h: MailHarness;
  let ring: KeyRing;
  before(async () => {
    h = await startIdentityHarness({ AUTH_JWT_PRIVATE_KEY: TEST_JWT_PRIVATE_KEY });
    const { jwtIssuer, jwtAudience, accessTokenTtlS } = identitySettings(h.config);
    // A second ring over the test key: it signs exactly what the server's ring signs.
    ring = await KeyRing.create({
      privateKeyPem: TEST_JWT_PRIVATE_KEY,
      issuer: jwtIssuer,
      audience: jwtAudience,
      accessTokenTtlS,
    });
  });
  after(() => h.close());

  const sessions = (token: string) =>
    h.app.inject({ method: 'GET', url: '/api/v1/auth/sessions', headers: bearer(token) });

  /** A token signed with the test key over any claims (jose checks none of them when signing). */
  const signRaw = async (claims: Record<string, unknown>) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'EdDSA', kid: h.app.identity.keys.kid, typ: 'at+jwt' })
      .sign(await importPKCS8(TEST_JWT_PRIVATE_KEY, 'EdDSA'));

  test('regression (a signed token with a sid that is not a UUID answered 500): 401 INVALID_ACCESS_TOKEN', async () => {
    const user = await createUser(h);
    const pair = await signIn(h.app, user);
    assert.equal(ring.kid, h.app.identity.keys.kid);
    assert.equal(
      (await sessions(await ring.sign({ sub: user.id, sid: pair.sessionId }))).statusCode,
      200,
    );
    for (const [sub, sid] of [
      [user.id, 'not-a-uuid'],
      ['not-a-uuid', pair.sessionId],
      [user.id, pair.sessionId.toUpperCase()],
      [user.id, `${pair.sessionId} `],
      [user.id, ''],
    ] as const)
      assertProblem(await sessions(await ring.sign({ sub, sid })), 401, 'INVALID_ACCESS_TOKEN');
  });

  test('every claim is checked for shape: sub and sid strings, iat and exp whole seconds, exp after iat', async () => {
    const user = await createUser(h);
    const pair = await signIn(h.app, user);
    const { jwtIssuer: iss, jwtAudience: aud } = identitySettings(h.config);
    const now = Math.floor(Date.now() / 1000);
    const good = { sub: user.id, sid: pair.sessionId, iss, aud, iat: now, exp: now + 600 };
    assert.equal((await sessions(await signRaw(good))).statusCode, 200);
    for (const bad of [
      { ...good, sid: 42 },
      { ...good, sid: [pair.sessionId] },
      { ...good, sub: { id: user.id } },
      { ...good, iat: now + 0.5 },
      { ...good, iat: -1 },
      { ...good, iat: String(now) },
      { ...good, exp: 1e300 },
      { ...good, exp: now + 600.5 },
      { ...good, iat: now + 700 },
    ])
      assertProblem(await sessions(await signRaw(bad)), 401, 'INVALID_ACCESS_TOKEN');
  });

  test('regression (non-canonical base64url): a signature differing only in the spare bits of its last character is refused, before and after the real token is cached', async () => {
    const user = await createUser(h);
    const pair = await signIn(h.app, user);
    const [header, payload, signature] = pair.accessToken.split('.') as [string, string, string];
    const variant = `${header}.${payload}.${withSpareBits(signature) as string}`;
    assert.notEqual(variant, pair.accessToken);
    assertProblem(await sessions(variant), 401, 'INVALID_ACCESS_TOKEN');
    // The real token is verified and cached; the variant shares the cache key's neighbourhood.
    for (let i = 0; i < 3; i++) assert.equal((await sessions(pair.accessToken)).statusCode, 200);
    assertProblem(await sessions(variant), 401, 'INVALID_ACCESS_TOKEN');
    assert.equal((await sessions(pair.accessToken)).statusCode, 200);
  });

  test('regression (non-canonical base64url): a header or payload with spare bits set is refused even when the signature covers that text', async () => {
    const user = await createUser(h);
    const pair = await signIn(h.app, user);
    const { jwtIssuer: iss, jwtAudience: aud } = identitySettings(h.config);
    const key = createPrivateKey(TEST_JWT_PRIVATE_KEY);
    const now = Math.floor(Date.now() / 1000);
    // A header and a payload whose encodings leave spare bits (padded with unused members).
    let header = '';
    for (let pad = ''; header.length % 4 < 2; pad += 'x')
      header = b64({
        alg: 'EdDSA',
        kid: h.app.identity.keys.kid,
        typ: 'at+jwt',
        ...(pad && { x: pad }),
      });
    let payload = '';
    for (let pad = ''; payload.length % 4 < 2; pad += 'x')
      payload = b64({
        sub: user.id,
        sid: pair.sessionId,
        iss,
        aud,
        iat: now,
        exp: now + 600,
        jti: `j${pad}`,
      });
    const signed = (h64: string, p64: string) =>
      `${h64}.${p64}.${sign(null, Buffer.from(`${h64}.${p64}`), key).toString('base64url')}`;
    assert.equal((await sessions(signed(header, payload))).statusCode, 200, 'the canonical one');
    assertProblem(
      await sessions(signed(withSpareBits(header) as string, payload)),
      401,
      'INVALID_ACCESS_TOKEN',
    );
    assertProblem(
      await sessions(signed(header, withSpareBits(payload) as string)),
      401,
      'INVALID_ACCESS_TOKEN',
    );
  });

  test('refresh tokens: one differing only in the spare bits of its last character is refused, and spends or revokes nothing', async () => {
    const user = await createUser(h);
    const pair = await signIn(h.app, user);
    const variant = withSpareBits(pair.refreshToken) as string;
    assert.notEqual(variant, pair.refreshToken);
    assert.deepEqual(
      Buffer.from(variant, 'base64url'),
      Buffer.from(pair.refreshToken, 'base64url'),
    );
    const refresh = (refreshToken: string) =>
      h.app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refreshToken } });
    assertProblem(await refresh(variant), 401, 'INVALID_REFRESH_TOKEN');
    assert.equal((await refresh(pair.refreshToken)).statusCode, 200, 'the real one still works');
  });
});
