// How apps use uploaded files (src/platform/files/references.ts): lookups scoped by purpose and
// owner, the ready file's variants and paths, a signed URL a third party can fetch, the bytes.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  fileContentPath,
  lookupFiles,
  openFile,
  signedFileUrl,
} from '../../src/platform/files/index.ts';
import {
  ftestModule,
  settled,
  startFilesHarness,
  type FilesHarness,
} from '../fixtures/files/harness.ts';
import { multipart, pdf, png } from '../fixtures/files/samples.ts';

async function upload(
  h: FilesHarness,
  headers: Record<string, string>,
  purpose: string,
  file: { name: string; type: string; data: Buffer },
): Promise<string> {
  const form = multipart([
    { name: 'purpose', data: purpose },
    { name: 'file', filename: file.name, contentType: file.type, data: file.data },
  ]);
  const res = await h.app.inject({
    method: 'POST',
    url: '/api/v1/files',
    headers: { ...headers, 'content-type': form.contentType },
    payload: form.body,
  });
  assert.equal(res.statusCode, 201, res.body);
  return res.json<{ id: string }>().id;
}

describe('files: references for apps', () => {
  let h: FilesHarness;
  let alice: { user: { id: string }; headers: Record<string, string> };
  let bob: { user: { id: string }; headers: Record<string, string> };
  let picture: string;
  let doc: string;
  before(async () => {
    h = await startFilesHarness(ftestModule({ smallCap: 1_000_000 }));
    alice = await h.user();
    bob = await h.user();
    picture = await upload(h, alice.headers, 'ftest.picture', {
      name: 'p.png',
      type: 'image/png',
      data: await png(300, 200),
    });
    doc = await upload(h, alice.headers, 'ftest.doc', {
      name: 'd.pdf',
      type: 'application/pdf',
      data: pdf(),
    });
    assert.equal((await settled(h.app, picture, alice.headers)).status, 'ready');
  });
  after(() => h.close());

  test('a lookup finds the owner’s file of the purpose, with its variants and paths', async () => {
    const db = h.platform.database.db;
    const found = await lookupFiles(db, [picture, picture], {
      purpose: 'ftest.picture',
      ownerId: alice.user.id,
    });
    assert.equal(found.size, 1);
    const info = found.get(picture);
    assert.ok(info);
    assert.equal(info.status, 'ready');
    assert.equal(info.width, 300);
    assert.equal(info.height, 200);
    assert.ok(info.blurhash);
    assert.equal(info.path, `/api/v1/files/${picture}/content`);
    assert.deepEqual(info.variants.map((v) => v.id).sort(), ['w128.jpeg', 'w128.webp']);
    const webp = info.variants.find((v) => v.id === 'w128.webp');
    assert.equal(webp?.path, fileContentPath(picture, 'w128.webp'));
    const served = await h.app.inject({
      method: 'GET',
      url: webp?.path ?? '',
      headers: alice.headers,
    });
    assert.equal(served.statusCode, 200);
    assert.equal(served.headers['content-type'], 'image/webp');
  });

  test('another owner, another purpose, a deleted file, a missing or malformed id: not found', async () => {
    const db = h.platform.database.db;
    const asBob = await lookupFiles(db, [picture], {
      purpose: 'ftest.picture',
      ownerId: bob.user.id,
    });
    assert.equal(asBob.size, 0);
    const wrongPurpose = await lookupFiles(db, [picture, doc], {
      purpose: 'ftest.doc',
      ownerId: alice.user.id,
    });
    assert.deepEqual([...wrongPurpose.keys()], [doc]);
    const none = await lookupFiles(db, [randomUUID(), 'not-a-uuid', "x' or 1=1 --"], {
      purpose: 'ftest.picture',
    });
    assert.equal(none.size, 0);
    assert.equal((await lookupFiles(db, [], { purpose: 'ftest.picture' })).size, 0);
    const gone = await upload(h, alice.headers, 'ftest.doc', {
      name: 'gone.pdf',
      type: 'application/pdf',
      data: pdf(),
    });
    const del = await h.app.inject({
      method: 'DELETE',
      url: `/api/v1/files/${gone}`,
      headers: alice.headers,
    });
    assert.equal(del.statusCode, 204);
    assert.equal((await lookupFiles(db, [gone], { purpose: 'ftest.doc' })).size, 0);
  });

  test('without an owner, any owner’s file of the purpose is found (reading, not attaching)', async () => {
    const found = await lookupFiles(h.platform.database.db, [picture], {
      purpose: 'ftest.picture',
    });
    assert.equal(found.get(picture)?.ownerId, alice.user.id);
  });

  test('a signed URL serves the bytes to anyone holding it; openFile streams them', async () => {
    const url = await signedFileUrl(h.platform, picture, {
      variant: 'w128.webp',
      expiresInSeconds: 60,
    });
    const parsed = new URL(url);
    const res = await h.app.inject({ method: 'GET', url: parsed.pathname + parsed.search });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.headers['content-type'], 'image/webp');
    const tampered = await h.app.inject({
      method: 'GET',
      url: parsed.pathname + parsed.search.replace(/signature=./, 'signature=A'),
    });
    assert.ok(tampered.statusCode >= 400 && tampered.statusCode < 500);
    const opened = await openFile(h.platform, doc);
    const chunks: Buffer[] = [];
    for await (const chunk of opened.body) chunks.push(chunk as Buffer);
    assert.equal(Buffer.concat(chunks).length, opened.size);
    assert.equal(opened.contentType, 'application/pdf');
    await assert.rejects(openFile(h.platform, randomUUID()), /not ready/);
    await assert.rejects(openFile(h.platform, picture, 'w9999.webp'), /no variant/);
  });
});
