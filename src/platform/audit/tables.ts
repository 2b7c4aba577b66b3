import type { ColumnType } from 'kysely';

/** One audited action. Rows are never updated or deleted (the database refuses). */
export interface AuditEventTable {
  id: string;
  occurred_at: ColumnType<Date, Date | undefined, never>;
  action: string;
  actor_id: string | null;
  subject_type: string | null;
  subject_id: string | null;
  ip: string | null;
  request_id: string | null;
  data: ColumnType<Record<string, unknown>, string | undefined, string>;
  /** Position in the hash chain (1, 2, 3...; a bigint, read as text): set by the database. */
  seq: ColumnType<string, never, never>;
  /** The previous row's `hash` (64 zeros for the first): set by the database. */
  prev_hash: ColumnType<string, never, never>;
  /** SHA-256 of the row's content and `prev_hash` (`chainHash`): set by the database. */
  hash: ColumnType<string, never, never>;
}

/** The one row saying where the chain ends (its last `seq` and `hash`). */
export interface AuditChainHeadTable {
  id: number;
  seq: ColumnType<string, never, never>;
  hash: ColumnType<string, never, never>;
}

/** The audit area's tables. */
export interface AuditTables {
  gw_audit_event: AuditEventTable;
  gw_audit_chain_head: AuditChainHeadTable;
}
