import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { tablesOf, type AnyDb } from '../db/index.ts';
import type { AuditTables } from './tables.ts';

/** `prev_hash` of the first row of the chain. */
export const GENESIS_HASH = '0'.repeat(64);

/** A row as the chain hashes it: every field as text, exactly as the database renders it. */
export interface ChainedRow {
  seq: string;
  id: string;
  /** `YYYY-MM-DDTHH:MM:SS.ffffffZ` (microseconds, UTC). */
  occurredAt: string;
  action: string;
  actorId: string | null;
  subjectType: string | null;
  subjectId: string | null;
  ip: string | null;
  requestId: string | null;
  /** `data::text`: PostgreSQL's own rendering of the jsonb value (key order and spacing fixed). */
  data: string;
  prevHash: string;
  hash: string;
}

const field = (value: string | null): string =>
  value === null ? '-;' : `${Buffer.byteLength(value, 'utf8')}:${value};`;

/**
 * The SHA-256 (hex) of a row's content and its `prev_hash`: the same serialization as the
 * database's `gw_audit_event_digest` (migration 202612061900), computed here independently so a
 * changed database function cannot vouch for itself.
 */
export function chainHash(row: Omit<ChainedRow, 'hash'>): string {
  const text = [
    'gw-audit-v1',
    row.seq,
    row.id,
    row.occurredAt,
    row.action,
    row.actorId,
    row.subjectType,
    row.subjectId,
    row.ip,
    row.requestId,
    row.data,
    row.prevHash,
  ]
    .map(field)
    .join('');
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** The rows of the chain as text, in `seq` order, from `afterSeq` on (the export and verify). */
export function chainedRowsQuery(db: AnyDb) {
  return (
    tablesOf<AuditTables>(db)
      .selectFrom('gw_audit_event')
      .select([
        sql<string>`seq::text`.as('seq'),
        sql<string>`id::text`.as('id'),
        sql<string>`to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`.as(
          'occurredAt',
        ),
        'action',
        sql<string | null>`actor_id::text`.as('actorId'),
        'subject_type as subjectType',
        'subject_id as subjectId',
        'ip',
        'request_id as requestId',
        sql<string>`data::text`.as('data'),
        'prev_hash as prevHash',
        'hash',
      ])
      // The table's bigint, not the text alias of the same name.
      .orderBy('gw_audit_event.seq')
  );
}

/** Where the chain breaks: the first row that does not hold, and why. */
export interface ChainBreak {
  /** The `seq` expected at this point (the row that is missing or wrong). */
  seq: string;
  /** The row found there (null when the chain ends early). */
  id: string | null;
  reason: 'hash-mismatch' | 'prev-hash-mismatch' | 'seq-gap' | 'head-mismatch';
  message: string;
}

/** The outcome of `verifyAuditChain`. */
export type ChainVerdict =
  | { ok: true; count: number; headSeq: string; headHash: string }
  | { ok: false; count: number; broken: ChainBreak };

/**
 * Walks the whole chain in `seq` order (keyset batches, in one REPEATABLE READ snapshot so rows
 * appended meanwhile do not disturb the walk): each row must follow the previous one (`seq` + 1,
 * `prev_hash` = the previous `hash`) and hash to its `hash`; the last row must be the head's.
 * Returns the count, or the first broken link.
 */
export async function verifyAuditChain(
  db: AnyDb,
  options: { batchSize?: number } = {},
): Promise<ChainVerdict> {
  const batchSize = options.batchSize ?? 5_000;
  return db
    .transaction()
    .setIsolationLevel('repeatable read')
    .execute(async (trx) => {
      await sql`set transaction read only`.execute(trx);
      let expectedSeq = 1n;
      let prevHash = GENESIS_HASH;
      let count = 0;
      const fail = (
        seq: bigint,
        id: string | null,
        reason: ChainBreak['reason'],
        message: string,
      ): ChainVerdict => ({
        ok: false,
        count,
        broken: { seq: seq.toString(), id, reason, message },
      });
      for (;;) {
        const rows = await chainedRowsQuery(trx)
          .where('seq', '>=', expectedSeq.toString())
          .limit(batchSize)
          .execute();
        for (const row of rows) {
          const seq = BigInt(row.seq);
          if (seq !== expectedSeq)
            return fail(
              expectedSeq,
              null,
              'seq-gap',
              `row seq ${expectedSeq} is missing: the next row is seq ${row.seq} (id ${row.id}); rows were deleted`,
            );
          if (row.prevHash !== prevHash)
            return fail(
              seq,
              row.id,
              'prev-hash-mismatch',
              `row seq ${row.seq} (id ${row.id}): prev_hash ${row.prevHash} is not the hash of seq ${seq - 1n} (${prevHash})`,
            );
          const computed = chainHash(row);
          if (computed !== row.hash)
            return fail(
              seq,
              row.id,
              'hash-mismatch',
              `row seq ${row.seq} (id ${row.id}): its content hashes to ${computed}, not to the stored ${row.hash}; the row was altered`,
            );
          prevHash = row.hash;
          expectedSeq = seq + 1n;
          count += 1;
        }
        if (rows.length < batchSize) break;
      }
      const head = await tablesOf<AuditTables>(trx)
        .selectFrom('gw_audit_chain_head')
        .select([sql<string>`seq::text`.as('seq'), 'hash'])
        .where('id', '=', 1)
        .executeTakeFirst();
      const lastSeq = (expectedSeq - 1n).toString();
      // No head: no audit row was ever written (the first one makes it).
      if (!head && count === 0) return { ok: true, count, headSeq: '0', headHash: GENESIS_HASH };
      if (!head) return fail(expectedSeq, null, 'head-mismatch', 'the chain head row is missing');
      if (head.seq !== lastSeq || head.hash !== prevHash)
        return fail(
          expectedSeq,
          null,
          'head-mismatch',
          `the chain ends at seq ${lastSeq} (${prevHash}) but its head records seq ${head.seq} (${head.hash}); rows at the end were removed, or the head was altered`,
        );
      return { ok: true, count, headSeq: head.seq, headHash: head.hash };
    });
}
