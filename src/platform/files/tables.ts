import type { ColumnType, Generated, Kysely } from 'kysely';
import { tablesOf, type AnyDb } from '../db/index.ts';

type NullableTime = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
/** bigint: pg returns text; written as numbers. */
type Big = ColumnType<string, number | string, number | string>;
type NullableBig = ColumnType<
  string | null,
  number | string | null | undefined,
  number | string | null
>;

export type FileStatus = 'processing' | 'ready' | 'failed';
export type UploadState = 'pending' | 'completed' | 'rejected';

/** One stored variant, as kept in `gw_file.variants`. */
export interface StoredVariant {
  name: string;
  format: string;
  width: number;
  height: number;
  contentType: string;
  size: number;
  key: string;
}

/** The files module's tables: its own view of the database (`tablesOf`). */
export interface FilesTables {
  gw_file: {
    id: string;
    owner_id: string;
    purpose: string;
    status: FileStatus;
    failure_reason: string | null;
    content_type: string;
    size: Big;
    checksum_sha256: string;
    filename: Generated<string>;
    upload_key: string | null;
    original_key: string | null;
    original_content_type: string | null;
    original_size: NullableBig;
    width: number | null;
    height: number | null;
    blurhash: string | null;
    variants: ColumnType<StoredVariant[], string | undefined, string>;
    quota_bytes: Big;
    processed_at: NullableTime;
    created_at: Generated<Date>;
    updated_at: Generated<Date>;
    deleted_at: NullableTime;
  };
  gw_file_upload: {
    id: string;
    owner_id: string;
    purpose: string;
    content_type: string;
    size: Big;
    checksum_sha256: string;
    filename: Generated<string>;
    object_key: string;
    state: UploadState;
    expires_at: ColumnType<Date, Date | string, Date | string>;
    created_at: Generated<Date>;
  };
  gw_file_usage: {
    user_id: string;
    used_bytes: Big;
  };
}

export type FilesDb = Kysely<FilesTables>;

/** The database (or a transaction on it) seen through the files tables. */
export function filesDb(db: AnyDb): FilesDb {
  return tablesOf<FilesTables>(db);
}
