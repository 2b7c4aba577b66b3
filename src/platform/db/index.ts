export { openDatabase, tablesOf } from './database.ts';
export type { AnyDb, Database, Db, NoTables, OpenOptions } from './database.ts';
export { runningEmbeddedUrl, startEmbeddedPostgres } from './embedded.ts';
export type { EmbeddedServer } from './embedded.ts';
export {
  DbCodes,
  translateDbError,
  isUnavailable,
  isUniqueViolation,
  DB_RETRY_AFTER_SECONDS,
} from './errors.ts';
export { withTransaction, isRetryableTransactionError } from './transaction.ts';
export type { TransactionContext, TransactionOptions } from './transaction.ts';
export { mergeMigrations, migrateToLatest, rollback, migrationStatus } from './migrations.ts';
export type { MigrationSet, MigrationStatus } from './migrations.ts';
export { newId, withBaseColumns, withSoftDelete, addUpdatedAtTrigger } from './schema.ts';
export { softDelete } from './soft-delete.ts';
export { encodeCursor, decodeCursor } from './cursor.ts';
export {
  parseListQuery,
  applyListFilters,
  listConditions,
  listParameters,
  listQuerySchema,
  DEFAULT_LIMIT,
  MAX_LIMIT,
} from './list-query.ts';
export type {
  ListSpec,
  ListQuery,
  FilterField,
  FilterOp,
  FieldType,
  ParsedFilter,
  ParsedSort,
  AnySelect,
} from './list-query.ts';
export { paginate, pageSchema } from './pagination.ts';
export type { ListBase, Page, PageInfo, PaginateOptions } from './pagination.ts';
export { backupDatabase, restoreDatabase } from './backup.ts';
export {
  executePrepared,
  preparedQuery,
  preparedSql,
  preparedName,
  PreparingClient,
  MAX_PREPARED_PER_CONNECTION,
} from './prepared.ts';
