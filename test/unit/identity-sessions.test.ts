import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { Writable } from 'node:stream';
import { describe, mock, test } from 'node:test';
import { SignJWT, importPKCS8 } from 'jose';
import { createCache } from '../../src/platform/cache/index.ts';
import type { Database, Db } from '../../src/platform/db/index.ts';
import {
  createIdentity,
  describeDevice,
  KeyRing,
  parseDevice,
  SessionCache,
  identitySettings,
} from '../../src/platform/identity/index.ts';
import { isNewDevice } from '../../src/platform/identity/sessions/device.ts';
import { createLogger } from '../../src/platform/observability/index.ts';
import { TEST_JWT_PRIVATE_KEY } from '../helpers/app.ts';
import { loadAppConfig } from '../../src/app.ts';

const logger = createLogger({
  level: 'silent',
  destination: new Writable({ write: (_c, _e, cb) => cb() }),
});
const CHROME_MAC =
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36';
const SAFARI_IPHONE =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1';
/** A user and a session id as the server signs them (UUIDs; other shapes are refused). */
const USER = '0195d3c2-7a4e-7b1c-9f00-0123456789ab';
const SESSION = '0195d3c2-7a4e-7b1c-9f00-ba9876543210';
const keyPem = (type: 'ed25519' | 'ec' | 'rsa', kind: 'private' | 'public' = 'private') => {
  const pair =
    type === 'ec'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : type === 'rsa'
        ? generateKeyPairSync('rsa', { modulusLength: 2048 })
        : generateKeyPairSync('ed25519');
  return kind === 'private'
    ? pair.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
    : pair.publicKey.export({ format: 'pem', type: 'spki' }).toString();
};
const ring = (privateKeyPem: string, previousKeyPems: string[] = []) =>
  KeyRing.create({
    privateKeyPem,
    previousKeyPems,
    issuer: 'https://iss.test',
    audience: 'aud',
    accessTokenTtlS: 60,
  });

describe('identity sessions: devices', () => {
  test('user agents parse into browser, OS and platform; nothing sent is null', () => {
    assert.deepEqual(parseDevice(CHROME_MAC), {
      browser: 'Chrome',
      os: 'macOS',
      platform: 'desktop',
    });
    assert.deepEqual(parseDevice(SAFARI_IPHONE), {
      browser: 'Safari',
      os: 'iOS',
      platform: 'mobile',
    });
    assert.deepEqual(parseDevice('curl/8.4.0')?.os, null);
    assert.equal(parseDevice(null), null);
    assert.equal(parseDevice('   '), null, 'bowser throws on an empty agent: not reached');
  });

  test('a new device is one whose browser, OS and platform no earlier sign-in had (versions ignored)', () => {
    const newer = CHROME_MAC.replace('Chrome/120.0.0.0', 'Chrome/131.0.0.0');
    assert.equal(isNewDevice(newer, [CHROME_MAC]), false);
    assert.equal(isNewDevice(SAFARI_IPHONE, [CHROME_MAC]), true);
    assert.equal(isNewDevice(null, [null]), false);
    assert.equal(isNewDevice(CHROME_MAC, [null, SAFARI_IPHONE]), true);
    assert.equal(describeDevice(SAFARI_IPHONE), 'Safari on iOS (mobile)');
    assert.equal(describeDevice(null), 'an unknown device');
  });
});

describe('identity sessions: settings', () => {
  test('defaults pinned: the session cache is auto, 30 s; no previous keys', () => {
    const c = loadAppConfig({ APP_ENV: 'test' });
    assert.equal(identitySettings(c).sessionCache, 'auto');
    assert.equal(identitySettings(c).sessionCacheTtlS, 30);
    assert.deepEqual(identitySettings(c).jwtPreviousKeys, []);
    assert.equal(
      identitySettings(loadAppConfig({ APP_ENV: 'test', AUTH_SESSION_CACHE_TTL: '2m' }))
        .sessionCacheTtlS,
      120,
    );
  });

  test('AUTH_JWT_PREVIOUS_KEYS: several PEM blocks, `\\n` escapes, public or private; others refused', () => {
    const a = keyPem('ed25519', 'public');
    const b = keyPem('ec');
    const c = loadAppConfig({
      APP_ENV: 'test',
      AUTH_JWT_PREVIOUS_KEYS: `${a}\n${b}`.replace(/\n/g, '\\n'),
    });
    assert.equal(identitySettings(c).jwtPreviousKeys.length, 2);
    assert.throws(
      () => loadAppConfig({ APP_ENV: 'test', AUTH_JWT_PREVIOUS_KEYS: 'not a key' }),
      /AUTH_JWT_PREVIOUS_KEYS: holds no PEM block/,
    );
    assert.throws(
      () => loadAppConfig({ APP_ENV: 'test', AUTH_JWT_PREVIOUS_KEYS: keyPem('rsa', 'public') }),
      /AUTH_JWT_PREVIOUS_KEYS: key 1 must be an Ed25519 or P-256 key/,
    );
    assert.throws(
      () =>
        loadAppConfig({
          APP_ENV: 'test',
          AUTH_JWT_PREVIOUS_KEYS: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----',
        }),
      /key 1 is not a PEM public or private key/,
    );
  });
});

describe('identity sessions: key ring rotation', () => {
  test('an ES256 previous key beside an EdDSA current one: each verifies its own tokens only', async () => {
    const oldPem = keyPem('ec');
    const old = await ring(oldPem);
    const current = await ring(keyPem('ed25519'), [oldPem]);
    assert.equal(old.alg, 'ES256');
    assert.deepEqual(current.previousKids, [old.kid]);
    const byOld = await old.sign({ sub: USER, sid: SESSION });
    assert.equal((await current.verify(byOld)).sub, USER);
    // The old key's kid on an EdDSA header: the key does not suit the algorithm.
    const forged = await new SignJWT({ sid: SESSION })
      .setProtectedHeader({ alg: 'EdDSA', kid: old.kid, typ: 'at+jwt' })
      .setSubject(USER)
      .setIssuer('https://iss.test')
      .setAudience('aud')
      .setIssuedAt()
      .setExpirationTime('60s')
      .sign(await importPKCS8(keyPem('ed25519'), 'EdDSA'));
    await assert.rejects(current.verify(forged));
  });

  test('regression: a token verified once (remembered) is still refused once it expires', async () => {
    mock.timers.enable({ apis: ['Date'], now: Date.now() });
    try {
      const keys = await ring(keyPem('ed25519'));
      const token = await keys.sign({ sub: USER, sid: SESSION });
      assert.equal((await keys.verify(token)).sid, SESSION);
      assert.equal((await keys.verify(token)).sid, SESSION, 'from the remembered verification');
      mock.timers.tick(61_000);
      await assert.rejects(keys.verify(token));
      await assert.rejects(keys.verify(token), 'and not remembered as valid again');
    } finally {
      mock.timers.reset();
    }
  });

  test('the current key listed among the previous ones is published once', async () => {
    const pem = keyPem('ed25519');
    const keys = await ring(pem, [pem]);
    assert.equal(keys.jwks.keys.length, 1);
  });
});

describe('identity sessions: session cache', () => {
  const live = {
    tier: 'free' as const,
    authenticatedAt: new Date('2026-12-01T10:00:00Z'),
    amr: ['pwd' as const],
    expiresAt: new Date(Date.now() + 3_600_000),
  };
  const db = {} as Db;

  test('a check that read the database before an invalidation does not store its stale answer', async () => {
    let calls = 0;
    let release: () => void = () => undefined;
    const cache = new SessionCache({
      cache: createCache({ redis: null, logger }),
      ttlS: 30,
      logger,
      lookup: async () => {
        calls += 1;
        if (calls === 1) await new Promise<void>((resolve) => (release = resolve));
        return live;
      },
    });
    const slow = cache.live(db, 's1', 'u1');
    await new Promise((resolve) => setImmediate(resolve));
    await cache.invalidateSession('u1', 's1');
    release();
    assert.equal((await slow)?.tier, 'free');
    await cache.live(db, 's1', 'u1');
    assert.equal(calls, 2, 'the stale answer was not cached');
    await cache.live(db, 's1', 'u1');
    assert.equal(calls, 2, 'the fresh one was');
    cache.close();
  });

  test('hits revive the dates; "not live" is cached; an expired session is read again', async () => {
    let answer: typeof live | undefined = { ...live, expiresAt: new Date(Date.now() + 1_000) };
    let calls = 0;
    const cache = new SessionCache({
      cache: createCache({ redis: null, logger }),
      ttlS: 30,
      logger,
      lookup: () => {
        calls += 1;
        return Promise.resolve(answer);
      },
    });
    await cache.live(db, 's', 'u');
    const hit = await cache.live(db, 's', 'u');
    assert.ok(hit?.authenticatedAt instanceof Date);
    assert.equal(calls, 1);
    await new Promise((resolve) => setTimeout(resolve, 1_050));
    answer = undefined;
    assert.equal(await cache.live(db, 's', 'u'), undefined, 'past its end: read again');
    assert.equal(await cache.live(db, 's', 'u'), undefined);
    assert.equal(calls, 2, '"not live" cached');
    cache.close();
  });
});

describe('identity sessions: where the session check is cached', () => {
  const staging = {
    APP_ENV: 'staging',
    APP_SECRET: 'k3J9x!qPz7Lw2Vb8Nc4Rt6Ym1Hs5Dg0Fa',
    SMTP_URL: 'smtp://mailer:pw@smtp.example.com:587',
    MAIL_FROM: 'Example <no-reply@example.com>',
    PUBLIC_URL: 'https://api.example.com',
    AUTH_JWT_PRIVATE_KEY: TEST_JWT_PRIVATE_KEY,
  };
  const backend = async (env: Record<string, string>) => {
    const config = loadAppConfig(env);
    const identity = await createIdentity({
      config,
      database: { db: {} } as Database,
      mail: null,
      logger,
      cache: createCache({ redis: null, logger }),
    });
    return identity.sessionCache.backend;
  };

  test('in process in test; never in process in staging unless AUTH_SESSION_CACHE=on; off when off', async () => {
    assert.equal(await backend({ APP_ENV: 'test' }), 'memory');
    assert.equal(await backend({ APP_ENV: 'test', AUTH_SESSION_CACHE: 'off' }), 'off');
    // Another process would never hear of a revocation made in this one.
    assert.equal(await backend(staging), 'off');
    assert.equal(await backend({ ...staging, AUTH_SESSION_CACHE: 'on' }), 'memory');
  });
});
