import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Secret, TOTP } from 'otpauth';
import {
  BackupCodeHasher,
  matchTotp,
  newBackupCodes,
  newTotpSecret,
  normalizeBackupCode,
  totpFor,
  totpStep,
} from '../../src/platform/identity/mfa/codes.ts';
import { TokenBox } from '../../src/platform/identity/tokens.ts';
import { identitySettings } from '../../src/platform/identity/index.ts';
import { loadAppConfig } from '../../src/app.ts';

/** RFC 6238 appendix B: the SHA-1 seed, as base32. */
const RFC_SECRET = Secret.fromLatin1('12345678901234567890').base32;

const codeAt = (secret: string, nowMs: number) =>
  new TOTP({
    secret: Secret.fromBase32(secret),
    algorithm: 'SHA1',
    digits: 6,
    period: 30,
  }).generate({ timestamp: nowMs });

describe('identity MFA: TOTP matching', () => {
  test('RFC 6238 test vectors (SHA-1, the last 6 of the 8 digits) match at their time step', () => {
    // T = 59 s → 94287082, T = 1111111109 s → 07081804, T = 1234567890 s → 89005924.
    assert.equal(matchTotp(RFC_SECRET, '287082', { nowMs: 59_000, lastStep: null }), 1);
    assert.equal(
      matchTotp(RFC_SECRET, '081804', { nowMs: 1_111_111_109_000, lastStep: null }),
      37_037_036,
    );
    assert.equal(
      matchTotp(RFC_SECRET, '005924', { nowMs: 1_234_567_890_000, lastStep: null }),
      41_152_263,
    );
  });

  test('the window is one step either side, no more', () => {
    const secret = newTotpSecret();
    const now = 1_800_000_015_000;
    const step = totpStep(now);
    for (const offset of [-1, 0, 1])
      assert.equal(
        matchTotp(secret, codeAt(secret, now + offset * 30_000), { nowMs: now, lastStep: null }),
        step + offset,
      );
    for (const offset of [-3, -2, 2, 3]) {
      const code = codeAt(secret, now + offset * 30_000);
      const inWindow = [-1, 0, 1].some((o) => codeAt(secret, now + o * 30_000) === code);
      if (!inWindow) assert.equal(matchTotp(secret, code, { nowMs: now, lastStep: null }), null);
    }
  });

  test('regression: steps at or before the last used one are refused (replay, and older codes)', () => {
    const secret = newTotpSecret();
    const now = 1_800_000_015_000;
    const step = totpStep(now);
    const current = codeAt(secret, now);
    assert.equal(matchTotp(secret, current, { nowMs: now, lastStep: step }), null);
    assert.equal(
      matchTotp(secret, codeAt(secret, now - 30_000), { nowMs: now, lastStep: step }),
      null,
    );
    assert.equal(
      matchTotp(secret, codeAt(secret, now + 30_000), { nowMs: now, lastStep: step }),
      step + 1,
    );
    assert.equal(matchTotp(secret, current, { nowMs: now, lastStep: step - 1 }), step);
  });

  test('malformed codes never match', () => {
    const secret = newTotpSecret();
    const now = 1_800_000_015_000;
    const code = codeAt(secret, now);
    for (const bad of ['', code.slice(1), `${code}0`, ` ${code}`, 'abcdef', code.replace(/./, 'x')])
      assert.equal(matchTotp(secret, bad, { nowMs: now, lastStep: null }), null);
  });

  test('the otpauth URI names the issuer and the account, with the standard parameters', () => {
    const secret = newTotpSecret();
    assert.match(secret, /^[A-Z2-7]{32}$/);
    const uri = totpFor(secret, 'ada@example.com', 'Groundwork').toString();
    assert.equal(
      uri,
      `otpauth://totp/Groundwork:ada%40example.com?issuer=Groundwork&secret=${secret}&algorithm=SHA1&digits=6&period=30`,
    );
  });
});

describe('identity MFA: backup codes', () => {
  test('ten distinct codes of ten Crockford base32 characters, shown as xxxxx-xxxxx', () => {
    const codes = newBackupCodes();
    assert.equal(codes.length, 10);
    assert.equal(new Set(codes).size, 10);
    for (const c of codes) assert.match(c, /^[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}$/);
  });

  test('typing variants normalise to the same code: case, dash, spaces, i/l for 1, o for 0', () => {
    assert.equal(normalizeBackupCode('AB1C0-DEFGH'), 'ab1c0defgh');
    assert.equal(normalizeBackupCode('abIcO defgh'), 'ab1c0defgh');
    assert.equal(normalizeBackupCode('abLc0-defgh'), 'ab1c0defgh');
  });

  test('hashes are keyed by APP_SECRET and bound to the user', () => {
    const a = new BackupCodeHasher('a'.repeat(40));
    const b = new BackupCodeHasher('b'.repeat(40));
    const code = 'abcde-fghjk';
    assert.equal(a.hash('u1', code), a.hash('u1', 'ABCDEFGHJK'));
    assert.notEqual(a.hash('u1', code), a.hash('u2', code));
    assert.notEqual(a.hash('u1', code), b.hash('u1', code));
    assert.match(a.hash('u1', code), /^[0-9a-f]{64}$/);
  });
});

describe('identity MFA: settings and sealing', () => {
  test('defaults: the mfaToken lives 5 minutes, the issuer is Groundwork', () => {
    const id = identitySettings(loadAppConfig({ APP_ENV: 'test' }));
    assert.equal(id.mfa.tokenTtlS, 300);
    assert.equal(id.mfa.totpIssuer, 'Groundwork');
    assert.equal(
      identitySettings(loadAppConfig({ APP_ENV: 'test', AUTH_MFA_TOKEN_TTL: '90s' })).mfa.tokenTtlS,
      90,
    );
  });

  test('a box of one purpose does not open a box of another (TOTP secrets vs refresh successors)', () => {
    const secret = 'c'.repeat(40);
    const totp = new TokenBox(secret, 'identity mfa totp secret');
    const refresh = new TokenBox(secret);
    const sealed = totp.seal('JBSWY3DPEHPK3PXP');
    assert.equal(totp.open(sealed), 'JBSWY3DPEHPK3PXP');
    assert.equal(refresh.open(sealed), null);
  });
});
