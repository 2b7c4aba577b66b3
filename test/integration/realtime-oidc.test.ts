// Access tokens of an external OpenID provider (seed 003 fronts its API with Keycloak), on HTTP and
// WebSocket alike: a real `oidc-provider` issues JWT access tokens (client credentials, resource
// indicators) carrying a Keycloak-style `realm_access.roles` claim, mapped to Groundwork roles.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { importJWK, SignJWT, type JWK } from 'jose';
import Provider from 'oidc-provider';
import { authorsApp } from '../../src/apps/authors/index.ts';
import { assertProblem } from '../helpers/problem.ts';
import { startRealtimeHarness, TestSocket, type RealtimeHarness } from '../helpers/realtime.ts';

const AUDIENCE = 'groundwork-api';
const RESOURCE = 'https://api.groundwork.test/';
const ROLES: Record<string, string[]> = {
  'kc-editor': ['gw-editors', 'offline_access'],
  'kc-reader': ['gw-readers'],
  'kc-nobody': ['offline_access'],
};
const SECRET = 'a-client-secret-for-tests-only';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = {
  ...(privateKey.export({ format: 'jwk' }) as JWK),
  kid: 'k1',
  alg: 'RS256',
  use: 'sig',
};

let server: Server;
let issuer: string;
let h: RealtimeHarness;
const sockets: TestSocket[] = [];

async function token(clientId: string): Promise<string> {
  const res = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${clientId}:${SECRET}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      resource: RESOURCE,
      scope: 'api',
    }),
  });
  const body = (await res.json()) as { access_token?: string };
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.ok(body.access_token?.split('.').length === 3, 'a JWT access token');
  return body.access_token;
}

/** A token signed with the provider's own key, with claims of the test's choosing. */
async function forged(
  claims: Record<string, unknown>,
  exp: number,
  aud = AUDIENCE,
): Promise<string> {
  return new SignJWT({ realm_access: { roles: ['gw-editors'] }, ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: 'k1', typ: 'at+jwt' })
    .setIssuer(issuer)
    .setAudience(aud)
    .setSubject('kc-editor')
    .setIssuedAt(exp - 600)
    .setExpirationTime(exp)
    .sign(await importJWK(signingJwk, 'RS256'));
}

before(async () => {
  server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`;
  const provider = new Provider(issuer, {
    clients: Object.keys(ROLES).map((id) => ({
      client_id: id,
      client_secret: SECRET,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      scope: 'api',
    })),
    jwks: { keys: [signingJwk] },
    scopes: ['api'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'api',
          audience: AUDIENCE,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    extraTokenClaims: (_ctx: unknown, t: unknown) => ({
      realm_access: { roles: ROLES[(t as { clientId?: string }).clientId ?? ''] ?? [] },
    }),
    // (test/helpers/oidc-provider.d.ts types only what the sign-in tests use)
  } as never);
  const callback = provider.callback();
  server.on('request', (req, res) => void callback(req, res));
  h = await startRealtimeHarness(
    {
      AUTH_EXTERNAL_ISSUER: issuer,
      AUTH_EXTERNAL_AUDIENCE: AUDIENCE,
      AUTH_EXTERNAL_ROLE_MAP: 'gw-editors=moderator,gw-readers=user',
    },
    [authorsApp],
  );
});

after(async () => {
  for (const s of sockets) s.ws.terminate();
  await h?.close();
  server?.closeAllConnections();
  await new Promise<void>((resolve) => server?.close(() => resolve()));
});

describe('external OpenID access tokens', () => {
  test('roles from the claim become permissions: the editor writes, the reader reads, nobody neither', async () => {
    const editor = { authorization: `Bearer ${await token('kc-editor')}` };
    const reader = { authorization: `Bearer ${await token('kc-reader')}` };
    const nobody = { authorization: `Bearer ${await token('kc-nobody')}` };
    const created = await h.app.inject({
      method: 'POST',
      url: '/api/v1/authors',
      headers: editor,
      payload: { name: 'Via Keycloak' },
    });
    assert.equal(created.statusCode, 201, created.body);
    assert.equal(
      (await h.app.inject({ method: 'GET', url: '/api/v1/authors', headers: reader })).statusCode,
      200,
    );
    assertProblem(
      await h.app.inject({
        method: 'POST',
        url: '/api/v1/authors',
        headers: reader,
        payload: { name: 'x' },
      }),
      403,
      'FORBIDDEN',
    );
    assertProblem(
      await h.app.inject({ method: 'GET', url: '/api/v1/authors', headers: nobody }),
      403,
      'FORBIDDEN',
    );
    // Its audit record names the external subject's stable id.
    const { rows } = await h.tdb.database.pool.query<{ actor_id: string }>(
      `select actor_id from gw_audit_event where action = 'authors.author.create' and subject_id = $1`,
      [created.json<{ id: string }>().id],
    );
    assert.match(
      rows[0]?.actor_id ?? '',
      /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
  });

  test('expired, tampered, wrong audience, unknown key: 401 INVALID_ACCESS_TOKEN', async () => {
    const now = Math.floor(Date.now() / 1000);
    const good = await token('kc-editor');
    const [head, payload, sig] = good.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<
      string,
      unknown
    >;
    const tampered = `${head}.${Buffer.from(JSON.stringify({ ...claims, realm_access: { roles: ['gw-editors', 'admin'] } })).toString('base64url')}.${sig}`;
    const { privateKey: other } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const unknownKey = await new SignJWT({})
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer(issuer)
      .setAudience(AUDIENCE)
      .setSubject('kc-editor')
      .setExpirationTime(now + 300)
      .sign(other);
    const bad = {
      expired: await forged({}, now - 60),
      tampered,
      'wrong audience': await forged({}, now + 300, 'someone-else'),
      'unknown key': unknownKey,
    };
    // The control: a token forged with the right key and claims passes.
    assert.equal(
      (
        await h.app.inject({
          method: 'GET',
          url: '/api/v1/authors',
          headers: { authorization: `Bearer ${await forged({}, now + 300)}` },
        })
      ).statusCode,
      200,
    );
    for (const [what, t] of Object.entries(bad)) {
      const res = await h.app.inject({
        method: 'GET',
        url: '/api/v1/authors',
        headers: { authorization: `Bearer ${t}` },
      });
      assert.equal(res.statusCode, 401, `${what}: ${res.body}`);
      assertProblem(res, 401, 'INVALID_ACCESS_TOKEN');
    }
  });

  test('the same tokens on the WebSocket: auth frame and subprotocol, channel permission from the roles', async () => {
    const reader = await token('kc-reader');
    const s = await TestSocket.open(h.base);
    sockets.push(s);
    const ready = await s.auth(reader);
    assert.equal(ready.type, 'ready');
    assert.equal((await s.subscribe('authors')).type, 'subscribed');
    const nobody = await TestSocket.open(h.base, {
      protocols: ['groundwork.v1.json', `bearer.${await token('kc-nobody')}`],
    });
    sockets.push(nobody);
    await nobody.next('ready');
    assert.equal((await nobody.subscribe('authors')).problem.code, 'CHANNEL_NOT_FOUND');
    const expired = await TestSocket.open(h.base);
    sockets.push(expired);
    const refused = await expired.auth(await forged({}, Math.floor(Date.now() / 1000) - 60));
    assert.equal(refused.type, 'error');
    assert.equal(refused.problem.code, 'INVALID_ACCESS_TOKEN');
  });
});
