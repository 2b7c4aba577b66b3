import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parsePhone } from '../../src/platform/identity/index.ts';

const strict = { defaultRegion: null, refusePremium: true };

describe('identity: phone numbers for the SMS factor (libphonenumber-js)', () => {
  test('valid numbers are normalised to E.164', () => {
    assert.deepEqual(parsePhone('+44 7911 123456', strict), { e164: '+447911123456' });
    assert.deepEqual(parsePhone(' +1 (415) 555-0123 ', strict), { e164: '+14155550123' });
    assert.deepEqual(parsePhone('+33 6 12 34 56 78', strict), { e164: '+33612345678' });
  });

  test('malformed numbers say why', () => {
    const cases: [string, string][] = [
      ['+44 7911 ABC456', 'letters'],
      ['+1-800-FLOWERS', 'letters'],
      ['+1 2', 'too-short'],
      ['07911 123456', 'no-country'],
      ['+44791112345678901', 'invalid'],
      ['', 'invalid'],
      ['+', 'invalid'],
    ];
    for (const [input, problem] of cases)
      assert.deepEqual(parsePhone(input, strict), { problem }, input);
  });

  test('another country format without a prefix needs the default region, and is read in it', () => {
    assert.deepEqual(parsePhone('07911 123456', strict), { problem: 'no-country' });
    assert.deepEqual(parsePhone('07911 123456', { ...strict, defaultRegion: 'GB' }), {
      e164: '+447911123456',
    });
    // A French national number read as British is not a valid British number.
    assert.deepEqual(parsePhone('06 12 34 56 78', { ...strict, defaultRegion: 'GB' }), {
      problem: 'invalid',
    });
    assert.deepEqual(parsePhone('06 12 34 56 78', { ...strict, defaultRegion: 'FR' }), {
      e164: '+33612345678',
    });
  });

  test('premium-rate and shared-cost numbers are refused unless the setting allows them', () => {
    assert.deepEqual(parsePhone('+1 900 555 0100', strict), { problem: 'premium-rate' });
    assert.deepEqual(parsePhone('+44 909 879 0000', strict), { problem: 'premium-rate' });
    assert.deepEqual(parsePhone('+34 901 123 456', strict), { problem: 'shared-cost' });
    assert.deepEqual(parsePhone('+41 840 123 456', strict), { problem: 'shared-cost' });
    assert.deepEqual(parsePhone('+44 909 879 0000', { ...strict, refusePremium: false }), {
      e164: '+449098790000',
    });
  });
});
