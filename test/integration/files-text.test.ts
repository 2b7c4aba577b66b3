// Text uploads: CSV and NDJSON have no magic number, so a document purpose listing a text type
// takes a head that is UTF-8 without NUL and not markup, NDJSON when it starts with `{`, else CSV;
// through multipart and the presigned `complete`.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { defineFilePurpose } from '../../src/platform/files/index.ts';
import { defineModule } from '../../src/platform/modules/index.ts';
import { assertProblem } from '../helpers/problem.ts';
import { startFilesHarness, type FileJson, type FilesHarness } from '../fixtures/files/harness.ts';
import { HTML, multipart, SVG_WITH_SCRIPT } from '../fixtures/files/samples.ts';

/** The files area's read-ahead window (HEAD_BYTES). */
const HEAD = 256 * 1024;

const module = defineModule({
  name: 'ftext',
  description: 'Files tests: text purposes.',
  filePurposes: [
    defineFilePurpose({
      name: 'ftext.dataset',
      description: 'CSV or NDJSON (tests).',
      kind: 'document',
      maxBytes: 1_000_000,
      contentTypes: ['text/csv', 'application/x-ndjson'],
      read: 'owner',
    }),
    defineFilePurpose({
      name: 'ftext.csv',
      description: 'CSV only (tests).',
      kind: 'document',
      maxBytes: 1_000_000,
      contentTypes: ['text/csv'],
      read: 'owner',
    }),
    defineFilePurpose({
      name: 'ftext.ndjson',
      description: 'NDJSON only (tests).',
      kind: 'document',
      maxBytes: 1_000_000,
      contentTypes: ['application/x-ndjson'],
      read: 'owner',
    }),
    defineFilePurpose({
      name: 'ftext.plain',
      description: 'Plain text (tests).',
      kind: 'document',
      maxBytes: 1_000_000,
      contentTypes: ['text/plain'],
      read: 'owner',
    }),
    defineFilePurpose({
      name: 'ftext.picture',
      description: 'A picture (tests).',
      kind: 'image',
      maxBytes: 1_000_000,
      contentTypes: ['image/png'],
      read: 'owner',
      image: { maxPixels: 1_000_000, maxFrames: 1, variants: [] },
    }),
    defineFilePurpose({
      name: 'ftext.pdf',
      description: 'A PDF (tests).',
      kind: 'document',
      maxBytes: 1_000_000,
      contentTypes: ['application/pdf'],
      read: 'owner',
    }),
  ],
});

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('base64');
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

function upload(
  h: FilesHarness,
  headers: Record<string, string>,
  purpose: string,
  data: Buffer | string,
  filename = 'data.csv',
  contentType = 'text/csv',
) {
  const form = multipart([
    { name: 'purpose', data: purpose },
    { name: 'file', filename, contentType, data: Buffer.from(data) },
  ]);
  return h.app.inject({
    method: 'POST',
    url: '/api/v1/files',
    headers: { ...headers, 'content-type': form.contentType },
    payload: form.body,
  });
}

async function fileCount(h: FilesHarness): Promise<number> {
  const { rows } = await h.tdb.database.pool.query<{ n: string }>(
    'select count(*)::text as n from gw_file',
  );
  return Number(rows[0]?.n);
}

describe('files: text uploads', () => {
  let h: FilesHarness;
  let headers: Record<string, string>;
  before(async () => {
    h = await startFilesHarness(module);
    headers = (await h.user()).headers;
  });
  after(() => h.close());

  test('a CSV is stored as text/csv, ready at once, served back as an attachment', async () => {
    const csv = 'id,name\n1,Zoë\n2,"a, b"\n';
    const res = await upload(h, headers, 'ftext.dataset', csv);
    assert.equal(res.statusCode, 201, res.body);
    const file = res.json<FileJson>();
    assert.equal(file.contentType, 'text/csv');
    assert.equal(file.status, 'ready');
    assert.equal(file.size, Buffer.byteLength(csv));
    const content = await h.app.inject({
      method: 'GET',
      url: `/api/v1/files/${file.id}/content`,
      headers,
    });
    assert.equal(content.statusCode, 200, content.body);
    assert.equal(content.headers['content-type'], 'text/csv');
    assert.match(String(content.headers['content-disposition']), /^attachment;/);
    assert.equal(content.body, csv);
  });

  test('NDJSON is stored as application/x-ndjson, also after a BOM and white space', async () => {
    for (const data of [
      '{"id":1}\n{"id":2}\n',
      Buffer.concat([BOM, Buffer.from(' \r\n\t{"id":1}\n')]),
    ]) {
      const res = await upload(h, headers, 'ftext.dataset', data, 'data.ndjson', 'text/plain');
      assert.equal(res.statusCode, 201, res.body);
      assert.equal(res.json<FileJson>().contentType, 'application/x-ndjson');
    }
  });

  test('a CSV with a BOM is CSV; the type is decided by content, not by the name or header', async () => {
    const withBom = Buffer.concat([BOM, Buffer.from('a,b\n1,2\n')]);
    const res = await upload(
      h,
      headers,
      'ftext.dataset',
      withBom,
      'x.ndjson',
      'application/x-ndjson',
    );
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.json<FileJson>().contentType, 'text/csv');
  });

  test('`{` for a CSV-only purpose is CSV; plain text for a text/plain purpose', async () => {
    const csv = await upload(h, headers, 'ftext.csv', '{"id":1}\n');
    assert.equal(csv.statusCode, 201, csv.body);
    assert.equal(csv.json<FileJson>().contentType, 'text/csv');
    const plain = await upload(h, headers, 'ftext.plain', 'hello\n', 'notes.txt', 'text/plain');
    assert.equal(plain.statusCode, 201, plain.body);
    assert.equal(plain.json<FileJson>().contentType, 'text/plain');
  });

  test('an NDJSON-only purpose refuses text that does not start with `{`', async () => {
    const before = await fileCount(h);
    const res = await upload(h, headers, 'ftext.ndjson', 'a,b\n1,2\n', 'x.ndjson');
    assertProblem(res, 415, 'FILE_TYPE_NOT_ALLOWED');
    assert.equal(await fileCount(h), before);
  });

  test('binary (NUL bytes) named .csv and invalid UTF-8 are refused (415), nothing stored', async () => {
    const before = await fileCount(h);
    for (const data of [
      Buffer.from('id,name\n1,\u0000\n'),
      Buffer.concat([Buffer.from('id,name\n1,'), Buffer.from([0xc3, 0x28]), Buffer.from('\n')]),
      Buffer.concat([Buffer.from('a\n'), Buffer.from([0xff, 0xfe]), Buffer.from('b\n')]),
      // The whole file ends in a cut sequence: nothing more will come.
      Buffer.concat([Buffer.from('a\nb'), Buffer.from([0xc3])]),
      // UTF-16 (with its BOM) is not UTF-8.
      Buffer.from('\ufeffa,b\n', 'utf16le'),
    ]) {
      const res = await upload(h, headers, 'ftext.dataset', data);
      assertProblem(res, 415, 'FILE_TYPE_NOT_ALLOWED');
    }
    assert.equal(await fileCount(h), before);
    const objects = await h.platform.storage.list('files/', { limit: 1_000 });
    assert.equal(objects.length, before, 'no object stored for a refused upload');
  });

  test('a multi-byte character cut by the end of the read-ahead window is fine', async () => {
    // `é` (c3 a9) straddles the window: its first byte is the window's last.
    const data = Buffer.concat([
      Buffer.from('n\n'),
      Buffer.alloc(HEAD - 3, 'x'),
      Buffer.from('é\n', 'utf8'),
      Buffer.from('y\n'),
    ]);
    assert.equal(data[HEAD - 1], 0xc3);
    const res = await upload(h, headers, 'ftext.dataset', data);
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.json<FileJson>().contentType, 'text/csv');
    assert.equal(res.json<FileJson>().size, data.length);
  });

  test('HTML or SVG claiming text/csv is refused (415), also after a BOM or white space', async () => {
    const before = await fileCount(h);
    for (const data of [
      HTML,
      SVG_WITH_SCRIPT,
      Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
      Buffer.concat([BOM, Buffer.from('\n  <html><script>alert(1)</script></html>')]),
    ]) {
      const res = await upload(h, headers, 'ftext.dataset', data, 'data.csv', 'text/csv');
      assertProblem(res, 415, 'FILE_TYPE_NOT_ALLOWED');
    }
    for (const purpose of ['ftext.csv', 'ftext.plain'])
      assertProblem(await upload(h, headers, purpose, HTML), 415, 'FILE_TYPE_NOT_ALLOWED');
    assert.equal(await fileCount(h), before);
  });

  test('text for a purpose listing no text type (an image, a PDF) is refused as before', async () => {
    for (const purpose of ['ftext.picture', 'ftext.pdf'])
      assertProblem(await upload(h, headers, purpose, 'a,b\n1,2\n'), 415, 'FILE_TYPE_NOT_ALLOWED');
  });

  test('presigned: a CSV completes as text/csv; HTML declared as text/csv is refused and removed', async () => {
    const direct = async (data: Buffer, body: Record<string, unknown> = {}) => {
      const res = await h.app.inject({
        method: 'POST',
        url: '/api/v1/files/uploads',
        headers,
        payload: {
          purpose: 'ftext.dataset',
          contentType: 'text/csv',
          size: data.length,
          checksumSha256: sha256(data),
          filename: 'direct.csv',
          ...body,
        },
      });
      assert.equal(res.statusCode, 201, res.body);
      const started = res.json<{ id: string; url: string; headers: Record<string, string> }>();
      const url = new URL(started.url);
      const put = await h.app.inject({
        method: 'PUT',
        url: `${url.pathname}${url.search}`,
        headers: started.headers,
        payload: data,
      });
      assert.ok(put.statusCode < 300, `${put.statusCode} ${put.body}`);
      return {
        id: started.id,
        done: await h.app.inject({
          method: 'POST',
          url: `/api/v1/files/uploads/${started.id}/complete`,
          headers,
        }),
      };
    };
    const csv = Buffer.concat([BOM, Buffer.from('id,name\n1,one\n')]);
    const ok = await direct(csv);
    assert.equal(ok.done.statusCode, 201, ok.done.body);
    const file = ok.done.json<FileJson>();
    assert.equal(file.contentType, 'text/csv');
    assert.equal(file.status, 'ready');
    assert.equal(file.filename, 'direct.csv');

    const ndjson = await direct(Buffer.from('{"id":1}\n'), {
      contentType: 'application/x-ndjson',
    });
    assert.equal(ndjson.done.statusCode, 201, ndjson.done.body);
    assert.equal(ndjson.done.json<FileJson>().contentType, 'application/x-ndjson');

    for (const bad of [HTML, Buffer.from('a,\u0000\n')]) {
      const refused = await direct(bad);
      assertProblem(refused.done, 415, 'FILE_TYPE_NOT_ALLOWED');
      const { rows } = await h.tdb.database.pool.query<{ state: string; object_key: string }>(
        'select state, object_key from gw_file_upload where id = $1',
        [refused.id],
      );
      assert.equal(rows[0]?.state, 'rejected');
      assert.equal(await h.platform.storage.head(String(rows[0]?.object_key)), null);
    }
  });
});

describe('files: text types in defineFilePurpose', () => {
  const base = { description: 'x', maxBytes: 10, read: 'owner' } as const;
  test('a document may list text/csv, application/x-ndjson and text/plain', () => {
    const p = defineFilePurpose({
      ...base,
      name: 'ftext.ok',
      kind: 'document',
      contentTypes: ['text/csv', 'application/x-ndjson', 'text/plain'],
    });
    assert.equal(p.contentTypes.length, 3);
  });
  test('an image may not; a text type never decided from content is refused; HTML stays scriptable', () => {
    for (const [kind, type, message] of [
      ['image', 'text/csv', /not an image type/],
      ['document', 'text/markdown', /never decided from the content/],
      ['document', 'text/html', /scriptable/],
    ] as const)
      assert.throws(
        () =>
          defineFilePurpose({
            ...base,
            name: 'ftext.bad',
            kind,
            contentTypes: [type],
            ...(kind === 'image' ? { image: { maxPixels: 1, maxFrames: 1, variants: [] } } : {}),
          }),
        message,
      );
  });
});
