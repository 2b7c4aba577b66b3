import { sql } from 'kysely';
import type pg from 'pg';
import type { AnyDb } from '../db/index.ts';
import { chainedRowsQuery, type ChainedRow } from './chain.ts';

/** One exported audit record: the stored event with its chain fields. */
export interface ExportedAuditRecord {
  seq: number;
  id: string;
  occurredAt: string;
  action: string;
  actorId: string | null;
  subjectType: string | null;
  subjectId: string | null;
  ip: string | null;
  requestId: string | null;
  data: unknown;
  prevHash: string;
  hash: string;
}

/** Rows fetched per round trip (the FETCH statement below says the same). */
const FETCH = 500;
const FETCH_STATEMENT = 'fetch 500 from gw_audit_export';

/**
 * The audit records of `[from, to)` in chain order (`seq`), as NDJSON chunks (one record per
 * line, several lines per chunk), read through a server-side cursor in one read-only REPEATABLE
 * READ transaction: a consistent snapshot, never more than one batch in memory, and the next
 * batch fetched only when the consumer (the HTTP response) asks for it.
 *
 * The cursor needs one connection held across its FETCHes for the life of the stream, so this
 * takes a client from the pool itself (Kysely's `stream()` would need the `pg-cursor` package);
 * the statements are Kysely's, compiled, with bound values. Stopping early (the client went
 * away) closes the cursor and gives the connection back.
 */
export async function* exportAuditRecords(
  db: AnyDb,
  pool: pg.Pool,
  range: { from: Date; to: Date },
): AsyncGenerator<string> {
  const query = chainedRowsQuery(db)
    .where('occurred_at', '>=', range.from)
    .where('occurred_at', '<', range.to);
  const declare = sql`declare gw_audit_export no scroll cursor for ${query}`.compile(db);
  const client = await pool.connect();
  let failure: Error | undefined;
  let open = false;
  try {
    await client.query('begin isolation level repeatable read read only');
    open = true;
    await client.query(declare.sql, [...declare.parameters]);
    for (;;) {
      const { rows } = await client.query<ChainedRow>(FETCH_STATEMENT);
      if (rows.length === 0) break;
      let chunk = '';
      for (const row of rows) {
        const record: ExportedAuditRecord = {
          ...row,
          seq: Number(row.seq),
          data: JSON.parse(row.data) as unknown,
        };
        chunk += `${JSON.stringify(record)}\n`;
      }
      yield chunk;
      if (rows.length < FETCH) break;
    }
    await client.query('commit');
    open = false;
  } catch (error) {
    failure = error instanceof Error ? error : new Error(String(error));
    throw error;
  } finally {
    // Ended early by the consumer (return()): the transaction is still open.
    if (open && !failure)
      await client.query('rollback').catch((error: unknown) => {
        failure = error instanceof Error ? error : new Error(String(error));
      });
    // A client that failed is discarded, not returned to the pool.
    client.release(failure);
  }
}
