import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import {
  chainHash,
  exportAuditRecords,
  listAuditEvents,
  recordAudits,
  type ExportedAuditRecord,
} from '../../src/platform/audit/index.ts';
import type { MailHarness } from '../helpers/mail.ts';
import {
  bearer,
  createUser,
  grantRoles,
  signIn,
  signInAdmin,
  startIdentityHarness,
} from '../helpers/identity.ts';
import { assertProblem } from '../helpers/problem.ts';

const URL = '/api/v1/admin/audit-events/export';

const parseLines = (body: string): ExportedAuditRecord[] =>
  body
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as ExportedAuditRecord);

describe('audit trail: GET /admin/audit-events/export (NDJSON)', () => {
  let h: MailHarness;
  let admin: Record<string, string>;
  let adminId: string;
  const marker = randomUUID();
  before(async () => {
    h = await startIdentityHarness();
    const signed = await signInAdmin(h.app, h);
    admin = signed.headers;
    adminId = signed.user.id;
    // Old events, outside the ranges asked for below, and 1,234 recent ones (several batches).
    await recordAudits(h.tdb.database.db, [
      { action: 'system.old', occurredAt: new Date('2020-01-01T00:00:00Z') },
      { action: 'system.old', occurredAt: new Date('2020-01-10T00:00:00Z') },
    ]);
    await recordAudits(
      h.tdb.database.db,
      Array.from({ length: 1_234 }, (_, i) => ({
        action: 'data.read',
        subjectType: 'note',
        subjectId: `${marker}-${i}`,
        data: { i, name: 'Zoë 😀\n' },
      })),
    );
  });
  after(() => h.close());

  const exportOf = (query: string, headers = admin) =>
    h.app.inject({ method: 'GET', url: `${URL}?${query}`, headers });
  const range = (from: Date, to: Date) =>
    `from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`;
  const lastHour = () => range(new Date(Date.now() - 3_600_000), new Date(Date.now() + 60_000));

  test('an admin gets the range as NDJSON, one record per line, in chain order with the chain fields', async () => {
    const res = await exportOf(lastHour());
    assert.equal(res.statusCode, 200, res.body);
    assert.match(String(res.headers['content-type']), /^application\/x-ndjson/);
    assert.match(String(res.headers['cache-control']), /no-store/);
    assert.ok(res.body.endsWith('\n'));
    const records = parseLines(res.body);
    const ours = records.filter((r) => r.subjectId?.startsWith(marker));
    assert.equal(ours.length, 1_234);
    assert.deepEqual(
      ours.map((r) => r.subjectId),
      Array.from({ length: 1_234 }, (_, i) => `${marker}-${i}`),
    );
    for (let i = 1; i < records.length; i++) {
      const [prev, cur] = [records[i - 1], records[i]];
      assert.ok(prev && cur);
      assert.ok(cur.seq > prev.seq, 'ordered by seq');
      // Rows dated outside the range (backdated above) leave gaps; consecutive ones link.
      if (cur.seq === prev.seq + 1) assert.equal(cur.prevHash, prev.hash);
    }
    const first = ours[0];
    assert.ok(first);
    assert.deepEqual(first.data, { i: 0, name: 'Zoë 😀\n' });
    assert.match(first.hash, /^[0-9a-f]{64}$/);
    assert.match(first.occurredAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    assert.ok(!records.some((r) => r.action === 'system.old'));
    // The data as exported hashes to the stored hash (PostgreSQL's jsonb text of `{"i": 0, ...}`).
    assert.equal(
      chainHash({
        ...first,
        seq: String(first.seq),
        data: '{"i": 0, "name": "Zoë 😀\\n"}',
      }),
      first.hash,
    );
  });

  test('read in batches through a cursor; a consumer that stops early gives the connection back', async () => {
    const { db, pool } = h.tdb.database;
    const from = new Date(Date.now() - 3_600_000);
    const to = new Date(Date.now() + 60_000);
    const sizes: number[] = [];
    for await (const chunk of exportAuditRecords(db, pool, { from, to }))
      sizes.push(chunk.split('\n').length - 1);
    assert.ok(sizes.length >= 3, `${sizes.length} chunks`);
    assert.ok(sizes.every((n) => n <= 500));
    const busy = () => pool.totalCount - pool.idleCount;
    const before = busy();
    for await (const chunk of exportAuditRecords(db, pool, { from, to })) {
      assert.ok(chunk.length > 0);
      assert.equal(busy(), before + 1, 'one connection held while streaming');
      break;
    }
    assert.equal(busy(), before, 'released after an early stop');
    const { rows } = await pool.query<{ n: number }>(
      `select count(*)::int as n from pg_stat_activity
        where datname = current_database() and state like 'idle in transaction%'`,
    );
    assert.equal(rows[0]?.n, 0, 'no transaction left open');
  });

  test('over a real socket: a client that goes away mid-stream ends the cursor and frees the connection', async () => {
    const { db, pool } = h.tdb.database;
    // Enough rows that the answer outgrows the socket buffers: the server has to wait for reads.
    for (let b = 0; b < 30; b++)
      await recordAudits(
        db,
        Array.from({ length: 1_000 }, (_, i) => ({
          action: 'data.read',
          subjectId: `bulk-${b}-${i}`,
          data: { pad: 'x'.repeat(200) },
        })),
      );
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = h.app.server.address() as AddressInfo;
    const openExports = async () =>
      (
        await pool.query<{ n: number }>(
          `select count(*)::int as n from pg_stat_activity
            where datname = current_database() and query like '%gw_audit_export%'
              and state like 'idle in transaction%'`,
        )
      ).rows[0]?.n ?? 0;
    let received = 0;
    const req = await new Promise<ReturnType<typeof httpRequest>>((resolve, reject) => {
      const r = httpRequest(
        { host: '127.0.0.1', port, path: `${URL}?${lastHour()}`, headers: admin },
        (res) => {
          assert.equal(res.statusCode, 200);
          res.on('data', (chunk: Buffer) => {
            received += chunk.length;
            if (received > 64 * 1024) {
              res.pause();
              resolve(r);
            }
          });
          res.on('end', () => reject(new Error('the whole export arrived: nothing was cut')));
        },
      );
      r.on('error', () => undefined);
      r.end();
    });
    // The client stopped reading: the server waits with its cursor open, not reading ahead.
    await sleep(300);
    assert.equal(await openExports(), 1, 'the export waits, its cursor open');
    req.destroy();
    // The server notices, the stream is destroyed, the cursor's transaction rolls back.
    let open = 1;
    for (let i = 0; i < 100 && open > 0; i++) {
      await sleep(50);
      open = await openExports();
    }
    assert.equal(open, 0, 'the export transaction was ended');
  });

  test('the export is audited', async () => {
    const [event] = await listAuditEvents(h.tdb.database.db, {
      action: 'audit.export',
      actorId: adminId,
      limit: 1,
    });
    assert.ok(event);
    assert.ok(typeof event.data.from === 'string' && typeof event.data.to === 'string');
  });

  test('a range holding nothing answers an empty body', async () => {
    const res = await exportOf(
      range(new Date('2019-01-01T00:00:00Z'), new Date('2019-01-02T00:00:00Z')),
    );
    assert.equal(res.statusCode, 200);
    assert.equal(res.body, '');
  });

  test('from is inclusive, to exclusive, with any offset', async () => {
    const res = await exportOf(
      `from=${encodeURIComponent('2020-01-01T01:00:00+01:00')}&to=2020-01-10T00:00:00Z`,
    );
    assert.equal(res.statusCode, 200, res.body);
    const records = parseLines(res.body);
    assert.deepEqual(
      records.map((r) => r.occurredAt),
      ['2020-01-01T00:00:00.000000Z'],
    );
  });

  test('bad ranges are 422 problems', async () => {
    const now = new Date();
    const cases: [string, string][] = [
      [range(now, now), 'AUDIT_EXPORT_RANGE_INVALID'],
      [range(now, new Date(now.getTime() - 1)), 'AUDIT_EXPORT_RANGE_INVALID'],
      [
        range(new Date('2026-01-01T00:00:00Z'), new Date('2026-02-01T00:00:01Z')),
        'AUDIT_EXPORT_RANGE_INVALID',
      ],
      ['from=2026-01-01T00:00:00Z', 'VALIDATION_FAILED'],
      ['to=2026-01-01T00:00:00Z', 'VALIDATION_FAILED'],
      ['from=yesterday&to=today', 'VALIDATION_FAILED'],
      ['from=2026-01-01&to=2026-01-02', 'VALIDATION_FAILED'],
      ['from=2026-01-01T00:00:00&to=2026-01-02T00:00:00', 'VALIDATION_FAILED'],
      [`from=${'9'.repeat(200)}&to=1`, 'VALIDATION_FAILED'],
    ];
    for (const [query, code] of cases) {
      const res = await exportOf(query);
      assertProblem(res, 422, code);
    }
    // Exactly 31 days is allowed.
    const ok = await exportOf(
      range(new Date('2026-01-01T00:00:00Z'), new Date('2026-02-01T00:00:00Z')),
    );
    assert.equal(ok.statusCode, 200, ok.body);
  });

  test('403 without audit:export, 401 without a token', async () => {
    const user = await createUser(h);
    const tokens = await signIn(h.app, user);
    assertProblem(await exportOf(lastHour(), bearer(tokens.accessToken)), 403, 'FORBIDDEN');
    // A moderator reads accounts, not the trail.
    await grantRoles(h, user.id, 'moderator');
    assertProblem(await exportOf(lastHour(), bearer(tokens.accessToken)), 403, 'FORBIDDEN');
    assertProblem(await exportOf(lastHour(), {}), 401, 'UNAUTHORIZED');
  });

  test('an admin session without its second factor is refused: MFA_REQUIRED', async () => {
    const other = await createUser(h);
    await grantRoles(h, other.id, 'admin');
    const tokens = await signIn(h.app, other);
    assertProblem(await exportOf(lastHour(), bearer(tokens.accessToken)), 403, 'MFA_REQUIRED');
  });

  test('the route is in the OpenAPI document with its query and NDJSON answer', async () => {
    const doc = (await h.app.inject({ url: '/openapi.json' })).json<{
      paths: Record<
        string,
        {
          get?: {
            parameters?: { name: string; in: string; required?: boolean }[];
            responses: Record<string, { content?: Record<string, unknown> }>;
          };
        }
      >;
    }>();
    const op = doc.paths[URL]?.get;
    assert.ok(op, 'documented');
    assert.deepEqual(
      (op.parameters ?? [])
        .filter((p) => p.in === 'query')
        .map((p) => [p.name, p.required])
        .sort(),
      [
        ['from', true],
        ['to', true],
      ],
    );
    assert.ok(op.responses['200']?.content?.['application/x-ndjson']);
    assert.ok(op.responses['422']);
    assert.ok(op.responses['403']);
  });
});
