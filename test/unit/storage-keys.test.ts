import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { describe, test } from 'node:test';
import {
  InvalidObjectKeyError,
  isKeyPrefix,
  isObjectKey,
  KEY_MAX_LENGTH,
  LocalStorage,
  objectKey,
  UrlSigner,
} from '../../src/platform/storage/index.ts';

const BAD_KEYS: [string, string][] = [
  ['../../etc/passwd', 'parent traversal'],
  ['files/../../etc/passwd', 'traversal inside a key'],
  ['files/..', 'a trailing ..'],
  ['./files/a', 'a leading .'],
  ['/etc/passwd', 'absolute'],
  ['files//a', 'empty segment'],
  ['files/a/', 'trailing slash'],
  ['', 'empty'],
  ['files/a\u0000b', 'NUL'],
  ['files\\..\\..\\etc', 'backslashes'],
  ['C:\\Windows', 'a drive letter'],
  ['files/.hidden', 'a hidden segment (the local driver’s own names)'],
  ['files/.meta.json', 'the sidecar name'],
  ['files/a'.padEnd(5_000, 'x'), '5,000 characters'],
  ['files/\uff0e\uff0e/x', 'fullwidth dots'],
  ['files/\u2025/x', 'two-dot leader'],
  ['files/a\u2215b', 'division slash'],
  ['files/\u202egpj.exe', 'right-to-left override'],
  ['files/e\u0301', 'a combining accent'],
  ['files/caf\u00e9', 'non-ASCII letters'],
  ['files/a b', 'a space'],
  ['files/a%2f..', 'percent escapes'],
  ['files/a\nb', 'a newline'],
  [Array.from({ length: 17 }, () => 'a').join('/'), 'too many segments'],
];

describe('object keys', () => {
  test('keys made by objectKey from platform segments pass', () => {
    assert.equal(
      objectKey('files', '0193b6f2-3c4e-7a1b-9f00-2a1d3e4f5a6b', 'w256.webp'),
      'files/0193b6f2-3c4e-7a1b-9f00-2a1d3e4f5a6b/w256.webp',
    );
    assert.ok(isObjectKey('a'));
    assert.ok(isObjectKey('x'.repeat(128)));
  });

  for (const [key, why] of BAD_KEYS) {
    test(`refused: ${why}`, () => {
      assert.equal(isObjectKey(key), false);
      assert.throws(() => objectKey(...key.split('/')), InvalidObjectKeyError);
    });
  }

  test(`a key of ${String(KEY_MAX_LENGTH)} characters passes, one more does not`, () => {
    const segments = Array.from({ length: 4 }, () => 'a'.repeat(127));
    const key = segments.join('/'); // 4 × 127 + 3 = 511
    assert.equal(key.length, 511);
    assert.ok(isObjectKey(`${key}b`));
    assert.equal(isObjectKey(`${key}bc`), false);
  });

  test('listing prefixes: empty, a key, a key and a slash, the start of a segment', () => {
    for (const p of ['', 'files', 'files/', 'files/0193', 'files/0193/'])
      assert.ok(isKeyPrefix(p), p);
    for (const p of ['/', '../', 'files//', '/files', 'files/../x'])
      assert.equal(isKeyPrefix(p), false, p);
  });

  test('the local driver refuses every bad key before touching the disk, and never resolves outside its folder', async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'gw-keys-'));
    t.after(() => rm(root, { recursive: true, force: true }));
    const storage = new LocalStorage({
      root,
      publicUrl: 'http://127.0.0.1:1',
      signer: new UrlSigner('x'.repeat(40)),
    });
    for (const [key] of BAD_KEYS) {
      await assert.rejects(
        storage.put(key, Buffer.from('x'), { contentType: 'text/plain' }),
        InvalidObjectKeyError,
      );
      await assert.rejects(storage.get(key), InvalidObjectKeyError);
      await assert.rejects(storage.head(key), InvalidObjectKeyError);
      await assert.rejects(storage.delete(key), InvalidObjectKeyError);
      await assert.rejects(
        storage.signedGetUrl(key, { expiresInSeconds: 60 }),
        InvalidObjectKeyError,
      );
    }
    await assert.rejects(storage.list('../'));
    const stored = await storage.put('files/a', Buffer.from('x'), { contentType: 'text/plain' });
    assert.equal(stored.key, 'files/a');
    assert.ok(join(root, 'files', 'a').startsWith(root + sep));
  });
});
