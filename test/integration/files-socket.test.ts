// Uploads over a real socket (issue 15): a body past the purpose's cap is answered 413 while the
// client is still sending (the server streams, it does not buffer the body first), nothing is
// kept, and the connection is closed.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ftestModule, startFilesHarness, type FilesHarness } from '../fixtures/files/harness.ts';
import { png } from '../fixtures/files/samples.ts';

const CAP = 40_000;

describe('files: a real socket', () => {
  let h: FilesHarness;
  let port: number;
  before(async () => {
    h = await startFilesHarness(ftestModule({ smallCap: CAP }));
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    port = (h.app.server.address() as AddressInfo).port;
  });
  after(() => h.close());

  test('413 FILE_TOO_LARGE arrives while the body is still being sent; nothing is stored', async (t) => {
    const { headers } = await h.user();
    const boundary = 'gwsocketboundary';
    const head = Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nftest.small\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n` +
        `Content-Type: image/png\r\n\r\n`,
    );
    const image = await png(60, 60); // a valid header; the rest of the part is filler
    const total = 200 * 1024 * 1024;
    let sent = 0;
    const answer = await new Promise<{ status: number; body: string; sentAtAnswer: number }>(
      (resolve, reject) => {
        const req = request({
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/api/v1/files',
          headers: {
            ...headers,
            'content-type': `multipart/form-data; boundary=${boundary}`,
            'content-length': String(total),
          },
        });
        let answered = false;
        req.on('response', (res) => {
          answered = true;
          const sentAtAnswer = sent;
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              body: Buffer.concat(chunks).toString('utf8'),
              sentAtAnswer,
            }),
          );
        });
        req.on('error', (error) => {
          if (!answered) reject(error);
        });
        const filler = Buffer.alloc(64 * 1024, 0x5a);
        const pump = (): void => {
          if (answered) return;
          if (sent === 0) {
            req.write(head);
            req.write(image);
            sent += head.length + image.length;
          }
          while (!answered && sent + filler.length < total) {
            sent += filler.length;
            if (!req.write(filler)) {
              req.once('drain', pump);
              return;
            }
          }
        };
        pump();
      },
    );
    t.diagnostic(`answered after ${String(answer.sentAtAnswer)} of ${String(total)} bytes sent`);
    assert.equal(answer.status, 413, answer.body);
    assert.match(answer.body, /FILE_TOO_LARGE/);
    assert.ok(
      answer.sentAtAnswer < 32 * 1024 * 1024,
      `answered after ${answer.sentAtAnswer} of ${total} bytes`,
    );
    const objects = await h.platform.storage.list('files/', { limit: 100 });
    assert.deepEqual(
      objects.map((o) => o.key),
      [],
    );
    const { rows } = await h.tdb.database.pool.query<{ n: string }>(
      'select count(*)::text as n from gw_file',
    );
    assert.equal(rows[0]?.n, '0');
  });
});
