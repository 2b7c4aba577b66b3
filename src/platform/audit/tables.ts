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
}

/** The audit area's tables. */
export interface AuditTables {
  gw_audit_event: AuditEventTable;
}
