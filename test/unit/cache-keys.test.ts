import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cacheKey, encodeKeyPart, userCacheKey, userTag } from '../../src/platform/cache/index.ts';

describe('cache keys', () => {
  test('parts are joined by ":" with ":", "%" and "@" encoded, so splits never collide', () => {
    assert.equal(cacheKey('products', 7, 'page', 2), 'products:7:page:2');
    assert.notEqual(cacheKey('ns', 'a:b', 'c'), cacheKey('ns', 'a', 'b:c'));
    assert.equal(cacheKey('ns', 'a:b', 'c'), 'ns:a%3Ab:c');
    assert.equal(encodeKeyPart('100%'), '100%25');
    assert.equal(encodeKeyPart('%3A'), '%253A');
    assert.notEqual(cacheKey('ns', '%3A'), cacheKey('ns', ':'));
    assert.notEqual(cacheKey('ns', 'a'), cacheKey('ns', 'a', ''));
    assert.equal(cacheKey('ns'), 'ns');
  });

  test('a user key is unreachable from a public key or another user id', () => {
    const mine = userCacheKey(42, 'profile');
    assert.equal(mine, 'profile:@42');
    assert.notEqual(cacheKey('profile', '@42'), mine);
    assert.notEqual(cacheKey('profile', 42), mine);
    assert.notEqual(userCacheKey(43, 'profile'), mine);
    assert.notEqual(userCacheKey('4', 'profile', '2'), userCacheKey('42', 'profile'));
    // An id holding the separator cannot pose as another user's id plus a part.
    assert.notEqual(userCacheKey('1:x', 'feed'), userCacheKey(1, 'feed', 'x'));
    assert.notEqual(userCacheKey('1@2', 'feed'), userCacheKey(1, 'feed', '@2'));
    // A public key whose first part looks like a user segment stays public.
    assert.equal(cacheKey('feed', '@1', 'x'), 'feed:%401:x');
  });

  test('namespaces are fixed low-case names: data in a namespace is refused', () => {
    for (const bad of ['', 'Products', 'a:b', 'user 42', '1abc', 'x'.repeat(49)]) {
      assert.throws(() => cacheKey(bad), TypeError, bad);
      assert.throws(() => userCacheKey(1, bad), TypeError, bad);
    }
    assert.equal(cacheKey('public-api_v1', 'x'), 'public-api_v1:x');
  });

  test('user keys and tags refuse an empty user id; non-finite numbers are refused', () => {
    assert.throws(() => userCacheKey('', 'profile'), TypeError);
    assert.throws(() => userTag(''), TypeError);
    assert.throws(() => cacheKey('ns', Number.NaN), TypeError);
    assert.throws(() => cacheKey('ns', Number.POSITIVE_INFINITY), TypeError);
  });

  test('userTag is user:<encoded id>', () => {
    assert.equal(userTag(42), 'user:42');
    assert.equal(userTag('a:b'), 'user:a%3Ab');
  });
});
