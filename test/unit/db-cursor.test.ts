import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, test } from 'node:test';
import { decodeCursor, encodeCursor } from '../../src/platform/db/index.ts';
import { HttpError } from '../../src/platform/http/index.ts';
import { withSpareBits } from '../helpers/base64url.ts';

const SECRET = 'unit-test-secret-0000000000000000000000';
const SIG = 'widgets|-created_at,-id||';
const KEYS = ['2026-03-01 10:00:00.123456+00', '0195d3c2-7a4e-7b1c-9f00-0123456789ab'];

/** Asserts `fn` throws the 400 INVALID_CURSOR problem, and returns its detail. */
function invalid(fn: () => unknown): string {
  let detail = '';
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof HttpError, String(error));
    assert.equal(error.code, 'INVALID_CURSOR');
    assert.equal(error.status, 400);
    detail = error.detail ?? '';
    return true;
  });
  return detail;
}

function flip(s: string, i: number): string {
  return `${s.slice(0, i)}${s[i] === 'A' ? 'B' : 'A'}${s.slice(i + 1)}`;
}

describe('keyset cursors', () => {
  test('round trip: strings with microseconds, numbers, null and unicode come back equal', () => {
    const cases: (string | number | null)[][] = [
      KEYS,
      [42, 'x'],
      [null, -1.5, 'ünïcödé ✓ "quoted" \\ ,.|'],
      [],
    ];
    for (const keys of cases) {
      const cursor = encodeCursor(SECRET, SIG, keys);
      assert.deepEqual(decodeCursor(SECRET, SIG, cursor, keys.length), keys);
    }
  });

  test('cursors are URL-safe and opaque: base64url body, a dot, a MAC', () => {
    const cursor = encodeCursor(SECRET, SIG, KEYS);
    assert.match(cursor, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/);
    assert.equal(cursor.includes(KEYS[0] as string), false);
    assert.equal(encodeURIComponent(cursor), cursor);
    assert.equal(encodeCursor(SECRET, SIG, KEYS), cursor, 'deterministic');
  });

  test('a cursor signed with another secret is refused', () => {
    const cursor = encodeCursor('another-secret-000000000000000000000000', SIG, KEYS);
    assert.match(
      invalid(() => decodeCursor(SECRET, SIG, cursor, 2)),
      /not valid/,
    );
  });

  test('a cursor of another listing or sort order is refused', () => {
    const cursor = encodeCursor(SECRET, SIG, KEYS);
    for (const other of [
      'widgets|created_at,id||',
      'gadgets|-created_at,-id||',
      'widgets|-created_at,-id|status:eq:"active"|',
      'widgets|-created_at,-id||quokka',
      '',
    ]) {
      assert.match(
        invalid(() => decodeCursor(SECRET, other, cursor, 2)),
        /another sort order or listing/,
      );
    }
  });

  test('a cursor with the wrong number of keys is refused', () => {
    const cursor = encodeCursor(SECRET, SIG, KEYS);
    invalid(() => decodeCursor(SECRET, SIG, cursor, 1));
    invalid(() => decodeCursor(SECRET, SIG, cursor, 3));
    invalid(() => decodeCursor(SECRET, SIG, encodeCursor(SECRET, SIG, []), 2));
  });

  test('tampered, truncated, malformed and oversized cursors are refused', () => {
    const cursor = encodeCursor(SECRET, SIG, KEYS);
    const [body, mac] = cursor.split('.') as [string, string];
    const bad = [
      flip(cursor, 0),
      `${flip(body, Math.floor(body.length / 2))}.${mac}`,
      `${body}.${flip(mac, 0)}`,
      `${body}.${flip(mac, mac.length - 1)}`,
      cursor.slice(0, -1),
      `${body}.${mac.slice(1)}`,
      `${body.slice(1)}.${mac}`,
      `${cursor}A`,
      `${cursor}.x`,
      body,
      `.${mac}`,
      `${body}.`,
      '',
      '.',
      '..',
      'not base64!.abc',
      `${body.replaceAll('-', '+').replaceAll('_', '/')}=.${mac}`,
      `${body}.${mac.toLowerCase()}`,
      'é'.repeat(30),
      `${'A'.repeat(3000)}.${mac}`,
    ];
    for (const c of bad) {
      if (c === cursor) continue;
      invalid(() => decodeCursor(SECRET, SIG, c, 2));
    }
    assert.match(
      invalid(() => decodeCursor(SECRET, SIG, 'A'.repeat(2049), 2)),
      /too long/,
    );
    // Keys swapped in a re-encoded body keep the old MAC: refused.
    const forged = Buffer.from(JSON.stringify({ s: SIG, k: ['1970-01-01', KEYS[1]] })).toString(
      'base64url',
    );
    invalid(() => decodeCursor(SECRET, SIG, `${forged}.${mac}`, 2));
    // The untouched cursor still decodes.
    assert.deepEqual(decodeCursor(SECRET, SIG, cursor, 2), KEYS);
  });

  test('a correctly signed payload that is not an object is INVALID_CURSOR, not a 500', () => {
    for (const json of ['null', '42', '"text"', '[]']) {
      const body = Buffer.from(json).toString('base64url');
      const mac = createHmac('sha256', SECRET).update(body).digest('base64url').slice(0, 22);
      invalid(() => decodeCursor(SECRET, SIG, `${body}.${mac}`, 2));
    }
  });

  test('regression (non-canonical base64url): a cursor body differing only in the spare bits of its last character is refused, even with a MAC over that text', () => {
    // Keys that make a body whose length leaves spare bits in its last character.
    let keys = KEYS;
    while (encodeCursor(SECRET, SIG, keys).split('.')[0]!.length % 4 < 2)
      keys = [`${keys[0]}x`, KEYS[1]!];
    const [body, mac] = encodeCursor(SECRET, SIG, keys).split('.') as [string, string];
    const variant = withSpareBits(body) as string;
    assert.notEqual(variant, body);
    assert.deepEqual(Buffer.from(variant, 'base64url'), Buffer.from(body, 'base64url'));
    // With the original MAC, and with a MAC made over the variant's text by the key holder.
    const macOfVariant = createHmac('sha256', SECRET)
      .update(variant)
      .digest('base64url')
      .slice(0, 22);
    for (const c of [`${variant}.${mac}`, `${variant}.${macOfVariant}`])
      assert.match(
        invalid(() => decodeCursor(SECRET, SIG, c, 2)),
        /malformed/,
      );
    assert.deepEqual(decodeCursor(SECRET, SIG, `${body}.${mac}`, 2), keys);
  });
});
