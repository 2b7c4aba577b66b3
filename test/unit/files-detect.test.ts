import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import {
  contentDisposition,
  detectType,
  peek,
  sanitizeFilename,
} from '../../src/platform/files/detect.ts';

describe('files: names, disposition, type by content', () => {
  test('sanitizeFilename: last segment, no controls, bidi or quotes, at most 200 characters', () => {
    assert.equal(sanitizeFilename('../../etc/passwd'), 'passwd');
    assert.equal(sanitizeFilename('C:\\Windows\\win.ini'), 'win.ini');
    assert.equal(sanitizeFilename('a\u0000b\u0007c.png'), 'abc.png');
    assert.equal(sanitizeFilename('evil\u202egnp.exe'), 'evilgnp.exe');
    assert.equal(sanitizeFilename('say "hi".txt'), 'say hi.txt');
    assert.equal(sanitizeFilename('...hidden'), 'hidden');
    assert.equal(sanitizeFilename(''), 'file');
    assert.equal(sanitizeFilename(undefined), 'file');
    assert.equal(sanitizeFilename('\u0000\u0000'), 'file');
    const long = sanitizeFilename(`${'x'.repeat(5_000)}.jpeg`);
    assert.equal([...long].length, 200);
    assert.ok(long.endsWith('.jpeg'));
    const emoji = sanitizeFilename(`${'😀'.repeat(300)}.png`);
    assert.equal([...emoji].length, 200, 'counted in characters, never splitting a pair');
    assert.ok(emoji.isWellFormed());
  });

  test('contentDisposition: an ASCII fallback and the UTF-8 name (RFC 6266 / 8187)', () => {
    assert.equal(
      contentDisposition('attachment', 'Résumé (v2).pdf'),
      `attachment; filename="R_sum_ (v2).pdf"; filename*=UTF-8''R%C3%A9sum%C3%A9%20%28v2%29.pdf`,
    );
    assert.equal(
      contentDisposition('inline', 'a\\b'),
      `inline; filename="a_b"; filename*=UTF-8''a%5Cb`,
    );
  });

  test('detectType reads magic bytes, not names: PNG, zip, nothing for HTML or empty', async () => {
    const pngHead = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
    assert.equal((await detectType(pngHead))?.mime, 'image/png');
    assert.equal(
      (await detectType(Buffer.from('PK\u0003\u0004\u0014\u0000\u0000\u0000\u0008\u0000')))?.mime,
      'application/zip',
    );
    assert.equal(await detectType(Buffer.from('<!doctype html><script>1</script>')), null);
    assert.equal(await detectType(Buffer.alloc(0)), null);
  });

  test('peek: the head is read ahead, the body still yields every byte in order', async () => {
    const chunks = Array.from({ length: 50 }, (_, i) => Buffer.alloc(10_000, i));
    const { head, body, ended } = await peek(Readable.from(chunks), 64 * 1024);
    assert.equal(head.length, 64 * 1024);
    assert.equal(ended, false);
    const all: Buffer[] = [];
    for await (const c of body) all.push(c as Buffer);
    assert.deepEqual(Buffer.concat(all), Buffer.concat(chunks));
    const small = await peek(Readable.from([Buffer.from('abc')]), 1024);
    assert.equal(small.head.toString(), 'abc');
    assert.equal(small.ended, true);
  });
});
