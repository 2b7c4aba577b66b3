import { sql, type Kysely } from 'kysely';
import { addUpdatedAtTrigger, withBaseColumns, withSoftDelete } from '../platform/db/index.ts';

/**
 * Files: one row per uploaded file (its objects in storage, its processing state and variants),
 * presigned direct uploads waiting for their `complete`, and each user's bytes stored (the quota,
 * reserved with conditional updates).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await withSoftDelete(
    withBaseColumns(db.schema.createTable('gw_file'))
      .addColumn('owner_id', 'uuid', (c) => c.notNull())
      .addColumn('purpose', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) =>
        c.notNull().check(sql`status in ('processing', 'ready', 'failed')`),
      )
      .addColumn('failure_reason', 'text')
      // Decided from the bytes, never from the client.
      .addColumn('content_type', 'text', (c) => c.notNull())
      .addColumn('size', 'bigint', (c) => c.notNull())
      .addColumn('checksum_sha256', 'text', (c) => c.notNull())
      // Sanitised: shown in Content-Disposition only, never part of a key.
      .addColumn('filename', 'text', (c) => c.notNull().defaultTo(''))
      // The bytes as uploaded; removed once an image is processed (they carry its metadata).
      .addColumn('upload_key', 'text')
      // What GET .../content serves: the stripped original (images), the upload (documents).
      .addColumn('original_key', 'text')
      .addColumn('original_content_type', 'text')
      .addColumn('original_size', 'bigint')
      .addColumn('width', 'integer')
      .addColumn('height', 'integer')
      .addColumn('blurhash', 'text')
      .addColumn('variants', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
      // Bytes charged to the owner's quota (given back at deletion).
      .addColumn('quota_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('processed_at', 'timestamptz'),
  ).execute();
  await addUpdatedAtTrigger(db, 'gw_file');
  await sql`create index gw_file_owner_idx on gw_file (owner_id, created_at desc) where deleted_at is null`.execute(
    db,
  );
  await sql`create index gw_file_deleted_idx on gw_file (deleted_at) where deleted_at is not null`.execute(
    db,
  );

  await db.schema
    .createTable('gw_file_upload')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('owner_id', 'uuid', (c) => c.notNull())
    .addColumn('purpose', 'text', (c) => c.notNull())
    .addColumn('content_type', 'text', (c) => c.notNull())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('checksum_sha256', 'text', (c) => c.notNull())
    .addColumn('filename', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('object_key', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) =>
      c.notNull().check(sql`state in ('pending', 'completed', 'rejected')`),
    )
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await sql`create index gw_file_upload_pending_idx on gw_file_upload (expires_at) where state = 'pending'`.execute(
    db,
  );

  await db.schema
    .createTable('gw_file_usage')
    .addColumn('user_id', 'uuid', (c) => c.primaryKey())
    .addColumn('used_bytes', 'bigint', (c) =>
      c
        .notNull()
        .defaultTo(0)
        .check(sql`used_bytes >= 0`),
    )
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('gw_file_usage').execute();
  await db.schema.dropTable('gw_file_upload').execute();
  await db.schema.dropTable('gw_file').execute();
}
