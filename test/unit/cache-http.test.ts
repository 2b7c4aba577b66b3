import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cacheControl, etagMatches, strongEtag } from '../../src/platform/cache/index.ts';

describe('HTTP caching helpers', () => {
  test('strongEtag is a quoted, unweak base64url digest of the exact bytes', () => {
    const etag = strongEtag('{"a":1}');
    assert.match(etag, /^"[A-Za-z0-9_-]{32}"$/);
    assert.equal(strongEtag(Buffer.from('{"a":1}')), etag);
    assert.notEqual(strongEtag('{"a":2}'), etag);
    assert.notEqual(strongEtag('{"a":1} '), etag);
  });

  test('If-None-Match: exact tag, lists, weak comparison and *', () => {
    const etag = '"abc"';
    assert.equal(etagMatches('"abc"', etag), true);
    assert.equal(etagMatches('"x", "abc"', etag), true);
    assert.equal(etagMatches('"x","abc" , "y"', etag), true);
    assert.equal(etagMatches('W/"abc"', etag), true, 'weak comparison for GET');
    assert.equal(etagMatches('"abc"', 'W/"abc"'), true);
    assert.equal(etagMatches('*', etag), true);
    assert.equal(etagMatches(' * ', etag), true);
    assert.equal(etagMatches('"abd"', etag), false);
    assert.equal(etagMatches('"ab"', etag), false);
    assert.equal(etagMatches('abc', etag), false, 'unquoted is not an entity tag');
    assert.equal(etagMatches('', etag), false);
    assert.equal(
      etagMatches('"a,b", "c"', '"a,b"'),
      true,
      'a comma inside quotes is part of the tag',
    );
    assert.equal(etagMatches('"a", "b"', '"a,b"'), false);
  });

  test('cacheControl renders a policy and refuses bad numbers', () => {
    assert.equal(cacheControl({ maxAge: 60 }), 'public, max-age=60');
    assert.equal(
      cacheControl({
        maxAge: 0,
        sMaxAge: 300,
        staleWhileRevalidate: 30,
        staleIfError: 600,
        immutable: true,
      }),
      'public, max-age=0, s-maxage=300, stale-while-revalidate=30, stale-if-error=600, immutable',
    );
    assert.equal(cacheControl('private'), 'private, no-store');
    assert.equal(cacheControl('no-store'), 'no-store');
    assert.throws(() => cacheControl({ maxAge: -1 }), TypeError);
    assert.throws(() => cacheControl({ maxAge: 1.5 }), TypeError);
    assert.throws(() => cacheControl({ maxAge: 10, sMaxAge: Number.NaN }), TypeError);
  });
});
