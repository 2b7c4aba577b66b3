export {
  auditClient,
  auditEventsQuery,
  listAuditEvents,
  recordAudit,
  recordAudits,
} from './record.ts';
export type { AuditContext, AuditEvent, AuditRecord } from './record.ts';
export { auditChanges, REDACTED } from './changes.ts';
export type { AuditChange, AuditChanges, AuditChangesOptions } from './changes.ts';
export { chainHash, GENESIS_HASH, verifyAuditChain } from './chain.ts';
export type { ChainBreak, ChainedRow, ChainVerdict } from './chain.ts';
export { AuditBuffer } from './buffer.ts';
export type { AuditBufferOptions } from './buffer.ts';
export type { AuditTables } from './tables.ts';
export { exportAuditRecords } from './export.ts';
export type { ExportedAuditRecord } from './export.ts';
export { auditModule } from './module.ts';
export {
  AUDIT_EXPORT_MAX_DAYS,
  AUDIT_EXPORT_PERMISSION,
  AuditCodes,
  registerAuditRoutes,
} from './routes.ts';
