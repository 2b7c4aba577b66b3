import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { auditChanges, chainHash, GENESIS_HASH, REDACTED } from '../../src/platform/audit/index.ts';

describe('audit: auditChanges (before/after diff)', () => {
  test('only the changed fields, each with from and to', () => {
    assert.deepEqual(
      auditChanges(
        { name: 'Ada', email: 'ada@example.com', locale: 'en', roles: ['user'] },
        { name: 'Ada L.', email: 'ada@example.com', locale: 'en', roles: ['user', 'admin'] },
      ),
      {
        name: { from: 'Ada', to: 'Ada L.' },
        roles: { from: ['user'], to: ['user', 'admin'] },
      },
    );
  });

  test('nothing changed: an empty object', () => {
    const at = new Date('2026-01-01T00:00:00Z');
    assert.deepEqual(
      auditChanges(
        { a: 1, b: { c: [1, 2] }, at },
        { a: 1, b: { c: [1, 2] }, at: new Date(at.getTime()) },
      ),
      {},
    );
  });

  test('fields on one side only change from or to null; a null record is empty', () => {
    assert.deepEqual(auditChanges({ a: 1 }, { b: 2 }), {
      a: { from: 1, to: null },
      b: { from: null, to: 2 },
    });
    assert.deepEqual(auditChanges(null, { a: 1 }), { a: { from: null, to: 1 } });
    assert.deepEqual(auditChanges({ a: 1 }, undefined), { a: { from: 1, to: null } });
    // undefined and null are the same absence.
    assert.deepEqual(auditChanges({ a: undefined }, { a: null }), {});
  });

  test('dates are compared by time and recorded as ISO strings', () => {
    assert.deepEqual(
      auditChanges({ lockedUntil: null }, { lockedUntil: new Date('2026-01-01T00:15:00.000Z') }),
      { lockedUntil: { from: null, to: '2026-01-01T00:15:00.000Z' } },
    );
  });

  test('secret-looking fields are redacted on both sides by default, and still show as changed', () => {
    const changes = auditChanges(
      {
        passwordHash: 'argon2id$old',
        apiKey: 'k1',
        totpSecret: 's1',
        refreshToken: 't1',
        backupCodes: ['1'],
        otp: '123456',
        email: 'a@example.com',
      },
      {
        passwordHash: 'argon2id$new',
        apiKey: 'k2',
        totpSecret: 's2',
        refreshToken: 't2',
        backupCodes: ['2'],
        otp: '654321',
        email: 'b@example.com',
      },
    );
    for (const name of [
      'passwordHash',
      'apiKey',
      'totpSecret',
      'refreshToken',
      'backupCodes',
      'otp',
    ])
      assert.deepEqual(changes[name], { from: REDACTED, to: REDACTED }, name);
    assert.deepEqual(changes.email, { from: 'a@example.com', to: 'b@example.com' });
    assert.ok(!JSON.stringify(changes).includes('argon2id'));
    // An unchanged secret is not listed at all.
    assert.deepEqual(auditChanges({ PASSWORD: 'x' }, { PASSWORD: 'x' }), {});
  });

  test('secrets nested in a changed value are redacted too', () => {
    const changes = auditChanges(
      { settings: { theme: 'dark', webhookSecret: 'whsec_1', keys: [{ token: 'a' }] } },
      { settings: { theme: 'light', webhookSecret: 'whsec_1', keys: [{ token: 'b' }] } },
    );
    assert.deepEqual(changes.settings, {
      from: { theme: 'dark', webhookSecret: REDACTED, keys: REDACTED },
      to: { theme: 'light', webhookSecret: REDACTED, keys: REDACTED },
    });
    assert.ok(!JSON.stringify(changes).includes('whsec_1'));
  });

  test('redact names more fields (case-insensitive); ignore leaves fields out', () => {
    assert.deepEqual(
      auditChanges(
        { phone: '+1 555', name: 'a', updatedAt: 1 },
        { phone: '+1 556', name: 'b', updatedAt: 2 },
        { redact: ['Phone'], ignore: ['updatedAt'] },
      ),
      { phone: { from: REDACTED, to: REDACTED }, name: { from: 'a', to: 'b' } },
    );
  });
});

describe('audit: chainHash', () => {
  const row = {
    seq: '1',
    id: '01a24c6c-3ec7-7000-ae20-70ea86fbba57',
    occurredAt: '2026-12-06T17:00:00.123456Z',
    action: 'auth.login.success',
    actorId: null,
    subjectType: null,
    subjectId: 'ü;1:x',
    ip: null,
    requestId: 'r',
    data: '{}',
    prevHash: GENESIS_HASH,
  };

  test('a SHA-256 in hex, stable for the same row', () => {
    assert.match(chainHash(row), /^[0-9a-f]{64}$/);
    assert.equal(chainHash(row), chainHash({ ...row }));
  });

  test('any field, null against empty, and field boundaries change it', () => {
    const base = chainHash(row);
    assert.notEqual(chainHash({ ...row, seq: '2' }), base);
    assert.notEqual(chainHash({ ...row, data: '{"a": 1}' }), base);
    assert.notEqual(chainHash({ ...row, ip: '' }), base);
    assert.notEqual(chainHash({ ...row, prevHash: 'f'.repeat(64) }), base);
    // Moving text from one field to the next is a different row.
    assert.notEqual(chainHash({ ...row, subjectId: 'ü;1:', requestId: 'xr' }), chainHash(row));
  });
});
