import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { allMigrations } from '../../src/migrations/index.ts';
import {
  GENESIS_HASH,
  recordAudit,
  recordAudits,
  verifyAuditChain,
  type ChainVerdict,
} from '../../src/platform/audit/index.ts';
import { migrateToLatest, rollback, withTransaction } from '../../src/platform/db/index.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const CHAIN_MIGRATION = '202612061900_platform_audit_chain';

/** Runs `main.ts audit ...` against a database; resolves with its exit code and output. */
function auditCli(
  url: string,
  ...args: string[]
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['src/main.ts', 'audit', ...args], {
      cwd: root,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        APP_ENV: 'test',
        LOG_LEVEL: 'warn',
        DATABASE_URL: url,
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

interface Row {
  seq: string;
  id: string;
  prev_hash: string;
  hash: string;
}

async function chainRows(tdb: TestDatabase): Promise<Row[]> {
  const { rows } = await tdb.database.pool.query<Row>(
    'select seq::text as seq, id::text as id, prev_hash, hash from gw_audit_event t order by t.seq',
  );
  return rows;
}

/** Runs `statement` as the table's owner with the append-only trigger off (what a tamperer does). */
async function tamper(tdb: TestDatabase, statement: string, values: unknown[]): Promise<void> {
  const client = await tdb.database.pool.connect();
  try {
    await client.query('begin');
    await client.query('alter table gw_audit_event disable trigger gw_audit_event_no_update');
    await client.query(statement, values);
    await client.query('alter table gw_audit_event enable trigger gw_audit_event_no_update');
    await client.query('commit');
  } finally {
    client.release();
  }
}

function assertBroken(
  verdict: ChainVerdict,
): asserts verdict is Extract<ChainVerdict, { ok: false }> {
  assert.equal(verdict.ok, false, 'the chain should not verify');
}

/** Events whose fields exercise the serialization: unicode, astral, newlines, nulls, numbers. */
const TRICKY = [
  { action: 'auth.login.success', actorId: randomUUID(), ip: '203.0.113.9', requestId: 'r-1' },
  {
    action: 'admin.user.update',
    subjectType: 'user',
    subjectId: 'ü-😀-\n-"quoted"-\\',
    data: {
      changes: { name: { from: 'Zoë', to: 'Zoë 😀' } },
      n: 1.5,
      big: 1e21,
      nested: [null, true, { b: 1, a: 'x;y:z' }],
    },
  },
  { action: 'system.noop', data: {} },
  { action: 'auth.logout', actorId: null, subjectType: null, ip: null, requestId: null },
];

describe('audit trail: the hash chain', () => {
  let tdb: TestDatabase;
  before(async () => {
    tdb = await createTestDatabase();
  });
  after(() => tdb.drop());

  test('an empty trail verifies, with no head yet (a new database has every table empty)', async () => {
    assert.deepEqual(await verifyAuditChain(tdb.database.db), {
      ok: true,
      count: 0,
      headSeq: '0',
      headHash: GENESIS_HASH,
    });
    const { rows } = await tdb.database.pool.query('select 1 from gw_audit_chain_head');
    assert.equal(rows.length, 0);
  });

  test('each row links to the previous one; an untouched chain verifies, with its count', async () => {
    for (const event of TRICKY) await recordAudit(tdb.database.db, event);
    await recordAudits(tdb.database.db, TRICKY);
    const rows = await chainRows(tdb);
    assert.equal(rows.length, TRICKY.length * 2);
    rows.forEach((row, i) => {
      assert.equal(row.seq, String(i + 1));
      assert.equal(row.prev_hash, i === 0 ? GENESIS_HASH : rows[i - 1]?.hash);
      assert.match(row.hash, /^[0-9a-f]{64}$/);
    });
    const verdict = await verifyAuditChain(tdb.database.db, { batchSize: 3 });
    assert.deepEqual(verdict, {
      ok: true,
      count: rows.length,
      headSeq: String(rows.length),
      headHash: rows.at(-1)?.hash,
    });
  });

  test('the chain fields cannot be chosen by the writer: the database sets them', async () => {
    await tdb.database.pool.query(
      `insert into gw_audit_event (id, action, seq, prev_hash, hash) values ($1, 'auth.logout', 999, 'x', 'y')`,
      [randomUUID()],
    );
    const last = (await chainRows(tdb)).at(-1);
    assert.notEqual(last?.seq, '999');
    assert.notEqual(last?.hash, 'y');
    assert.equal((await verifyAuditChain(tdb.database.db)).ok, true);
  });

  test('a rolled-back audit leaves no gap', async () => {
    const before = (await chainRows(tdb)).length;
    await assert.rejects(
      withTransaction(tdb.database.db, async (trx) => {
        await recordAudit(trx, { action: 'auth.password.change' });
        throw new Error('the change failed');
      }),
      /the change failed/,
    );
    await recordAudit(tdb.database.db, { action: 'auth.password.change' });
    const rows = await chainRows(tdb);
    assert.equal(rows.length, before + 1);
    assert.equal(rows.at(-1)?.seq, String(before + 1));
    assert.equal((await verifyAuditChain(tdb.database.db)).ok, true);
  });

  test('20 concurrent writers (READ COMMITTED) append without forking the chain', async () => {
    const before = (await chainRows(tdb)).length;
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        withTransaction(tdb.database.db, async (trx) => {
          await recordAudit(trx, { action: 'data.write', subjectId: `w${i}-a` });
          // Other work of the transaction after its audit row: the chain lock is held meanwhile.
          await sleep(Math.random() * 20);
          await recordAudits(trx, [
            { action: 'data.write', subjectId: `w${i}-b` },
            { action: 'data.write', subjectId: `w${i}-c` },
          ]);
        }),
      ),
    );
    const rows = await chainRows(tdb);
    assert.equal(rows.length, before + 60);
    const verdict = await verifyAuditChain(tdb.database.db);
    assert.equal(verdict.ok, true, JSON.stringify(verdict));
    // Each transaction's rows are consecutive: the chain follows commit order.
    const { rows: order } = await tdb.database.pool.query<{ subject_id: string }>(
      `select subject_id from gw_audit_event where action = 'data.write' order by seq`,
    );
    for (let i = 0; i < order.length; i += 3) {
      const writer = order[i]?.subject_id.split('-')[0];
      assert.deepEqual(
        order.slice(i, i + 3).map((r) => r.subject_id),
        [`${writer}-a`, `${writer}-b`, `${writer}-c`],
      );
    }
  });

  test('concurrent REPEATABLE READ writers fail and retry instead of forking', async () => {
    const before = (await chainRows(tdb)).length;
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        withTransaction(
          tdb.database.db,
          async (trx) => {
            // The snapshot is taken here, before the audit row: others commit meanwhile.
            await sql`select 1`.execute(trx);
            await sleep(Math.random() * 10);
            await recordAudit(trx, { action: 'data.write', subjectId: `rr${i}` });
          },
          { isolation: 'repeatable read', retries: 50, baseDelayMs: 5 },
        ),
      ),
    );
    assert.equal((await chainRows(tdb)).length, before + 10);
    assert.equal((await verifyAuditChain(tdb.database.db)).ok, true);
  });
});

describe('audit trail: the first rows, written at once', () => {
  let tdb: TestDatabase;
  before(async () => {
    tdb = await createTestDatabase();
  });
  after(() => tdb.drop());

  test('concurrent first writers (READ COMMITTED and REPEATABLE READ) make one head and one chain', async () => {
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        withTransaction(
          tdb.database.db,
          async (trx) => {
            await sql`select 1`.execute(trx);
            await recordAudit(trx, { action: 'data.write', subjectId: `first${i}` });
          },
          { isolation: i % 2 ? 'repeatable read' : 'read committed', retries: 50, baseDelayMs: 5 },
        ),
      ),
    );
    const verdict = await verifyAuditChain(tdb.database.db);
    assert.equal(verdict.ok && verdict.count, 10, JSON.stringify(verdict));
  });
});

describe('audit trail: tampering is found', () => {
  let tdb: TestDatabase;
  let rows: Row[];
  before(async () => {
    tdb = await createTestDatabase();
    for (let i = 0; i < 6; i++)
      await recordAudit(tdb.database.db, {
        action: 'admin.user.lock',
        subjectType: 'user',
        subjectId: `u${i}`,
        data: { minutes: 15 },
      });
    rows = await chainRows(tdb);
  });
  after(() => tdb.drop());

  test('a row whose data was altered by the owner: verify names it', async () => {
    const target = rows[2];
    assert.ok(target);
    await tamper(tdb, `update gw_audit_event set data = '{"minutes": 1}' where id = $1`, [
      target.id,
    ]);
    const verdict = await verifyAuditChain(tdb.database.db);
    assertBroken(verdict);
    assert.equal(verdict.broken.reason, 'hash-mismatch');
    assert.equal(verdict.broken.seq, target.seq);
    assert.equal(verdict.broken.id, target.id);
    assert.equal(verdict.count, 2);
    assert.match(verdict.broken.message, /altered/);

    const cli = await auditCli(tdb.url, 'verify');
    assert.equal(cli.status, 2, cli.stderr + cli.stdout);
    assert.match(cli.stdout, new RegExp(`BROKEN at seq ${target.seq} \\(id ${target.id}\\)`));

    // Put back as it was: the chain holds again.
    await tamper(tdb, `update gw_audit_event set data = '{"minutes": 15}' where id = $1`, [
      target.id,
    ]);
    assert.equal((await verifyAuditChain(tdb.database.db)).ok, true);
  });

  test('a row altered with its own hash recomputed: the next row no longer links', async () => {
    const target = rows[1];
    const next = rows[2];
    assert.ok(target && next);
    await tamper(
      tdb,
      `update gw_audit_event set subject_id = 'someone-else',
              hash = gw_audit_event_digest(seq, id, occurred_at, action, actor_id, subject_type,
                       'someone-else', ip, request_id, data, prev_hash)
        where id = $1`,
      [target.id],
    );
    const verdict = await verifyAuditChain(tdb.database.db);
    assertBroken(verdict);
    assert.equal(verdict.broken.reason, 'prev-hash-mismatch');
    assert.equal(verdict.broken.seq, next.seq);
    assert.equal(verdict.broken.id, next.id);
    await tamper(tdb, `update gw_audit_event set subject_id = 'u1', hash = $2 where id = $1`, [
      target.id,
      target.hash,
    ]);
    assert.equal((await verifyAuditChain(tdb.database.db)).ok, true);
  });

  test('a deleted row: verify names the missing seq', async () => {
    const target = rows[3];
    assert.ok(target);
    await tamper(tdb, 'delete from gw_audit_event where id = $1', [target.id]);
    const verdict = await verifyAuditChain(tdb.database.db);
    assertBroken(verdict);
    assert.equal(verdict.broken.reason, 'seq-gap');
    assert.equal(verdict.broken.seq, target.seq);
    assert.match(verdict.broken.message, new RegExp(`row seq ${target.seq} is missing`));
    const cli = await auditCli(tdb.url, 'verify');
    assert.equal(cli.status, 2, cli.stderr + cli.stdout);
    assert.match(cli.stdout, new RegExp(`BROKEN at seq ${target.seq}: seq-gap`));
  });
});

describe('audit trail: the newest rows removed', () => {
  let tdb: TestDatabase;
  before(async () => {
    tdb = await createTestDatabase();
  });
  after(() => tdb.drop());

  test('the head still names the last row: verify says the chain was cut short', async () => {
    for (let i = 0; i < 4; i++) await recordAudit(tdb.database.db, { action: 'auth.logout' });
    const cli = await auditCli(tdb.url, 'verify');
    assert.equal(cli.status, 0, cli.stderr + cli.stdout);
    assert.match(cli.stdout, /^audit chain OK: 4 records, head seq 4 hash [0-9a-f]{64}$/m);
    await tamper(tdb, 'delete from gw_audit_event where seq >= 3', []);
    const verdict = await verifyAuditChain(tdb.database.db);
    assertBroken(verdict);
    assert.equal(verdict.broken.reason, 'head-mismatch');
    assert.equal(verdict.count, 2);
    assert.match(verdict.broken.message, /ends at seq 2 .* head records seq 4/);
  });

  test('usage errors exit 64', async () => {
    const cli = await auditCli(tdb.url, 'nonsense');
    assert.equal(cli.status, 64);
    assert.match(cli.stderr, /usage: main audit/);
  });
});

describe('audit trail: the chain migration', () => {
  const migrations = allMigrations([]);
  const before = Object.fromEntries(
    Object.entries(migrations).filter(([name]) => name < CHAIN_MIGRATION),
  );
  let tdb: TestDatabase;
  after(() => tdb.drop());

  test('rows written before it are chained in time order; down and up again', async () => {
    tdb = await createTestDatabase({ migrations: before });
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    // Inserted out of time order: the chain follows occurred_at, then id.
    await tdb.database.pool.query(
      `insert into gw_audit_event (id, occurred_at, action, data) values
         ($1, '2026-01-03T00:00:00Z', 'auth.logout', '{"k": "ü"}'),
         ($2, '2026-01-01T00:00:00.123456Z', 'auth.login.success', '{}'),
         ($3, '2026-01-02T00:00:00Z', 'admin.user.lock', '{"minutes": 15}')`,
      ids,
    );
    await migrateToLatest(tdb.database.db, migrations);
    const rows = await chainRows(tdb);
    assert.deepEqual(
      rows.map((r) => r.id),
      [ids[1], ids[2], ids[0]],
    );
    assert.equal((await verifyAuditChain(tdb.database.db)).ok, true);
    await recordAudit(tdb.database.db, { action: 'auth.logout' });
    assert.deepEqual(await verifyAuditChain(tdb.database.db).then((v) => v.ok && v.count), 4);

    // Down to before the chain (and the migrations after it), then up again: rechained.
    const after = Object.keys(migrations).filter((n) => n >= CHAIN_MIGRATION).length;
    await rollback(tdb.database.db, migrations, after);
    const { rows: columns } = await tdb.database.pool.query(
      `select 1 from information_schema.columns where table_name = 'gw_audit_event' and column_name = 'hash'`,
    );
    assert.equal(columns.length, 0);
    await recordAudit(tdb.database.db, { action: 'auth.logout' });
    await migrateToLatest(tdb.database.db, migrations);
    const verdict = await verifyAuditChain(tdb.database.db);
    assert.equal(verdict.ok && verdict.count, 5);
  });
});
