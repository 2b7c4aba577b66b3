import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  contentDisposition,
  matchesEtag,
  parseRange,
  safeDisposition,
  UrlSigner,
} from '../../src/platform/storage/index.ts';

describe('storage signed URLs', () => {
  const signer = new UrlSigner('a-long-enough-test-secret-0123456789abcdef');
  const get = { expires: 2_000_000_000, disposition: 'inline', type: 'image/png' };

  test('a GET signature verifies with the same values, and with no other', () => {
    const sig = signer.signGet('files/a/original', get);
    assert.match(sig, /^[A-Za-z0-9_-]{43}$/);
    assert.ok(signer.verifyGet('files/a/original', get, sig));
    assert.equal(signer.verifyGet('files/a/other', get, sig), false);
    assert.equal(
      signer.verifyGet('files/a/original', { ...get, expires: get.expires + 1 }, sig),
      false,
    );
    assert.equal(
      signer.verifyGet('files/a/original', { ...get, disposition: 'attachment' }, sig),
      false,
    );
    assert.equal(signer.verifyGet('files/a/original', { ...get, type: 'text/html' }, sig), false);
    assert.equal(signer.verifyGet('files/a/original', { expires: get.expires }, sig), false);
    assert.equal(signer.verifyGet('files/a/original', get, `${sig}x`), false);
    assert.equal(signer.verifyGet('files/a/original', get, ''), false);
  });

  test('values cannot be shifted between fields (each is length-prefixed)', () => {
    const a = signer.signGet('k', { expires: 1, disposition: 'ab', type: '' });
    const b = signer.signGet('k', { expires: 1, disposition: 'a', type: 'b' });
    assert.notEqual(a, b);
  });

  test('a PUT signature binds type, length and checksum; a GET signature is not a PUT one', () => {
    const put = { expires: 2_000_000_000, type: 'image/png', length: 10, sha256: 'abc=' };
    const sig = signer.signPut('k', put);
    assert.ok(signer.verifyPut('k', put, sig));
    assert.equal(signer.verifyPut('k', { ...put, length: 11 }, sig), false);
    assert.equal(signer.verifyPut('k', { ...put, sha256: 'abd=' }, sig), false);
    assert.equal(signer.verifyPut('k', { ...put, type: 'image/jpeg' }, sig), false);
    assert.equal(signer.verifyGet('k', { expires: put.expires }, signer.signPut('k', put)), false);
  });

  test('another APP_SECRET makes other signatures', () => {
    const other = new UrlSigner('another-long-enough-test-secret-0123456789');
    assert.equal(other.verifyGet('k', get, signer.signGet('k', get)), false);
  });

  test('Content-Disposition: names made safe (quotes, CR/LF, slashes, NUL), non-ASCII in filename*', () => {
    assert.equal(contentDisposition('inline'), 'inline');
    assert.equal(contentDisposition('attachment', 'a.png'), 'attachment; filename="a.png"');
    assert.equal(
      contentDisposition('attachment', '../../etc/passwd'),
      'attachment; filename=".._.._etc_passwd"',
    );
    assert.equal(
      contentDisposition('attachment', 'a"\r\nSet-Cookie: x=1\u0000.png'),
      'attachment; filename="a___Set-Cookie: x=1_.png"',
    );
    assert.equal(
      contentDisposition('attachment', 'café.png'),
      'attachment; filename="caf_.png"; filename*=UTF-8\'\'caf%C3%A9.png',
    );
    assert.ok(contentDisposition('attachment', 'x'.repeat(5_000)).length < 300);
    assert.doesNotThrow(() => contentDisposition('attachment', '\ud800 lone surrogate'));
    assert.equal(
      safeDisposition('attachment; filename="a\r\nb.png"'),
      'attachment; filename="a__b.png"',
    );
    assert.equal(safeDisposition('inline'), 'inline');
    assert.throws(() => safeDisposition('evil\r\nheader: 1'));
  });

  test('Range: one range served, several or malformed ignored, outside the object unsatisfiable', () => {
    assert.equal(parseRange(undefined, 10), null);
    assert.deepEqual(parseRange('bytes=0-4', 10), { start: 0, end: 4 });
    assert.deepEqual(parseRange('bytes=5-', 10), { start: 5, end: 9 });
    assert.deepEqual(parseRange('bytes=-3', 10), { start: 7, end: 9 });
    assert.deepEqual(parseRange('bytes=-30', 10), { start: 0, end: 9 });
    assert.deepEqual(parseRange('bytes=8-100', 10), { start: 8, end: 9 });
    assert.equal(parseRange('bytes=10-', 10), 'unsatisfiable');
    assert.equal(parseRange('bytes=-0', 10), 'unsatisfiable');
    assert.equal(parseRange('bytes=0-', 0), 'unsatisfiable');
    assert.equal(parseRange('bytes=0-1,3-4', 10), null);
    assert.equal(parseRange('bytes=5-2', 10), null);
    assert.equal(parseRange('items=0-1', 10), null);
    assert.equal(parseRange('bytes=-', 10), null);
    assert.equal(parseRange(`bytes=0-${'9'.repeat(40)}`, 10), null);
  });

  test('If-None-Match: lists, weak tags and * match', () => {
    assert.ok(matchesEtag('"abc"', 'abc'));
    assert.ok(matchesEtag('"x", W/"abc"', 'abc'));
    assert.ok(matchesEtag('*', 'abc'));
    assert.equal(matchesEtag('"abd"', 'abc'), false);
    assert.equal(matchesEtag(undefined, 'abc'), false);
  });
});
