import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, parseDuration } from '../../src/platform/config/index.ts';
import {
  PasswordHasher,
  normalizeEmail,
  normalizeUsername,
  passwordProblems,
  identitySettings,
} from '../../src/platform/identity/index.ts';
import { SCORED_CHARS } from '../../src/platform/identity/passwords.ts';
import { TEST_JWT_PRIVATE_KEY } from '../helpers/app.ts';
import { loadAppConfig } from '../../src/app.ts';

describe('identity settings', () => {
  test('durations carry units and are parsed once into seconds (regression: seconds versus minutes)', () => {
    assert.equal(parseDuration('10s'), 10);
    assert.equal(parseDuration('15m'), 900);
    assert.equal(parseDuration('12h'), 43_200);
    assert.equal(parseDuration('30d'), 2_592_000);
    const id = identitySettings(loadAppConfig({ APP_ENV: 'test' }));
    assert.deepEqual(
      [
        id.accessTokenTtlS,
        id.refreshTokenTtlS,
        id.rememberMeTtlS,
        id.sessionMaxAgeS,
        id.refreshReuseGraceS,
        id.emailTokenTtlS,
        id.lockout.durationS,
        id.lockout.maxDurationS,
      ],
      [900, 86_400, 2_592_000, 7_776_000, 10, 86_400, 900, 86_400],
    );
    for (const bad of ['15', '15min', '0m', '1.5h', '-1d', '15 m']) {
      assert.throws(
        () => loadAppConfig({ APP_ENV: 'test', AUTH_ACCESS_TOKEN_TTL: bad }),
        (e: unknown) =>
          e instanceof ConfigError && e.issues.some((i) => i.key === 'AUTH_ACCESS_TOKEN_TTL'),
        bad,
      );
    }
  });

  test('staging and production need a signing key and argon2 at OWASP cost; a bad key is refused everywhere', () => {
    const prod = {
      APP_ENV: 'production',
      APP_SECRET: 'k3J9x!qPz7Lw2Vb8Nc4Rt6Ym1Hs5Dg0Fa',
      DATABASE_URL: 'postgres://u:p@db:5432/app',
      SMTP_URL: 'smtp://u:p@smtp.example.com:587',
      MAIL_FROM: 'Example <no-reply@example.com>',
      PUBLIC_URL: 'https://api.example.com',
    };
    const issues = (env: Record<string, string>) => {
      try {
        loadAppConfig(env);
        return [];
      } catch (error) {
        return (error as ConfigError).issues.map((i) => i.key);
      }
    };
    assert.ok(issues(prod).includes('AUTH_JWT_PRIVATE_KEY'));
    const ok = { ...prod, AUTH_JWT_PRIVATE_KEY: TEST_JWT_PRIVATE_KEY.replaceAll('\n', '\\n') };
    assert.deepEqual(issues(ok), [], 'a one-line PEM with \\n escapes is accepted');
    assert.ok(
      issues({ ...ok, ARGON2_MEMORY_KIB: '64', ARGON2_TIME_COST: '1' }).includes(
        'ARGON2_MEMORY_KIB',
      ),
    );
    assert.deepEqual(issues({ ...ok, ARGON2_MEMORY_KIB: '47104', ARGON2_TIME_COST: '1' }), []);
    assert.ok(
      issues({ APP_ENV: 'test', AUTH_JWT_PRIVATE_KEY: 'not a key' }).includes(
        'AUTH_JWT_PRIVATE_KEY',
      ),
    );
    assert.ok(
      issues({ APP_ENV: 'test', PASSWORD_MIN_LENGTH: '64', PASSWORD_MAX_LENGTH: '32' }).includes(
        'PASSWORD_MIN_LENGTH',
      ),
    );
  });
});

describe('identity normalisation and passwords', () => {
  test('emails: NFKC and lowercase; non-ASCII left after NFKC is refused', () => {
    assert.equal(normalizeEmail(' Ada@Example.COM '), 'ada@example.com');
    assert.equal(normalizeEmail('ａｄａ@ｅｘａｍｐｌｅ.ｃｏｍ'), 'ada@example.com');
    for (const bad of [
      'аda@example.com',
      'ada@exаmple.com',
      'ada@example',
      'a..b@example.com',
      `${'a'.repeat(65)}@example.com`,
    ])
      assert.equal(normalizeEmail(bad), null, bad);
  });

  test('user names: lowercase, 3-32 of a-z 0-9 _ . -, reserved and punctuation-only refused', () => {
    assert.equal(normalizeUsername('Ada.Lovelace'), 'ada.lovelace');
    for (const bad of ['ad', 'ADMIN', 'Support', '._-', 'ada lovelace', 'аda', 'a'.repeat(33)])
      assert.equal(normalizeUsername(bad), null, bad);
  });

  test('policy: length counted in characters, score with the user context', async () => {
    const policy = { minLength: 12, maxLength: 128, minScore: 3 };
    const first = async (password: string, context: string[] = []) =>
      (await passwordProblems(password, policy, context))[0]?.message ?? '';
    assert.match(await first('a'.repeat(11)), /at least 12/);
    assert.match(await first('b'.repeat(129)), /at most 128/);
    assert.match(
      await first('charlie_brown2024', ['charlie_brown', 'charlie@example.com']),
      /too easy/,
    );
    assert.deepEqual(
      await passwordProblems('violet-Harbor-83-quantum-Mosaic', policy, ['ada']),
      [],
    );
  });

  test(`policy: a password longer than ${SCORED_CHARS} characters is rated on its first ${SCORED_CHARS}`, async () => {
    const policy = { minLength: 12, maxLength: 1_024, minScore: 3 };
    const strong = 'violet-Harbor-83-quantum-Mosaic';
    // A strong prefix: whatever follows, the password is accepted.
    assert.deepEqual(await passwordProblems(strong.padEnd(1_024, 'a'), policy, []), []);
    assert.deepEqual(await passwordProblems(`${strong}${'1'.repeat(200)}`, policy, []), []);
    // A weak prefix is refused even with strong characters after it, and the message says why.
    const weak = await passwordProblems(`${'a'.repeat(SCORED_CHARS)}${strong}`, policy, []);
    assert.match(
      weak[0]?.message ?? '',
      new RegExp(`first ${SCORED_CHARS} characters are too easy`),
    );
    // Up to the bound, the whole password is rated as before.
    assert.match(
      (await passwordProblems('password'.repeat(SCORED_CHARS / 8), policy, []))[0]?.message ?? '',
      /^is too easy/,
    );
  });

  test('hasher: verifies its own hashes, refuses others, and an unknown user (dummy hash) never passes', async () => {
    const hasher = new PasswordHasher({ memoryKib: 64, timeCost: 1, parallelism: 1 });
    const stored = await hasher.hash('correct horse');
    assert.deepEqual(await hasher.verify(stored, 'correct horse'), { ok: true, rehash: false });
    assert.deepEqual(await hasher.verify(stored, 'wrong horse'), { ok: false, rehash: false });
    assert.deepEqual(await hasher.verify(null, 'correct horse'), { ok: false, rehash: false });
    assert.equal(
      new PasswordHasher({ memoryKib: 128, timeCost: 1, parallelism: 1 }).needsRehash(stored),
      true,
    );
  });
});
