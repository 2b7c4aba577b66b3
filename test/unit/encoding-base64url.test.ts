import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { decodeBase64url, isCanonicalBase64url } from '../../src/platform/encoding/index.ts';
import { withSpareBits } from '../helpers/base64url.ts';

/** The definition: decoding then re-encoding gives the same text back. */
const roundTrips = (text: string) => Buffer.from(text, 'base64url').toString('base64url') === text;

describe('canonical base64url', () => {
  test('what an encoder writes is canonical and decodes to its bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 70 }), (bytes) => {
        const text = Buffer.from(bytes).toString('base64url');
        assert.ok(isCanonicalBase64url(text), text);
        assert.deepEqual(decodeBase64url(text), Buffer.from(bytes));
      }),
      { seed: 12, numRuns: 500 },
    );
  });

  test('regression (spare bits): every other last character, padding, other alphabets and impossible lengths are refused', () => {
    for (let n = 1; n <= 8; n++) {
      const text = Buffer.alloc(n, 0xa5).toString('base64url');
      const variant = withSpareBits(text);
      if (variant !== undefined) {
        assert.deepEqual(Buffer.from(variant, 'base64url'), Buffer.from(text, 'base64url'));
        assert.equal(isCanonicalBase64url(variant), false, variant);
        assert.equal(decodeBase64url(variant), null);
      }
      // Every possible last character: canonical exactly when the round trip gives it back.
      for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_') {
        const candidate = `${text.slice(0, -1)}${c}`;
        assert.equal(isCanonicalBase64url(candidate), roundTrips(candidate), candidate);
      }
    }
    for (const bad of ['QQ==', 'QQ=', 'a+b/', 'ab c', 'A', 'AAAAA', 'é', 'QR'])
      assert.equal(isCanonicalBase64url(bad), false, bad);
  });

  test('same verdict as decode, re-encode and compare, on any text', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom(...'AQgwBhx9_-=+/ .é'.split('')), maxLength: 24 }),
        (text) => assert.equal(isCanonicalBase64url(text), roundTrips(text), text),
      ),
      { seed: 12, numRuns: 2_000 },
    );
  });
});
