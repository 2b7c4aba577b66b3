import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The little of s3rver's API the harness uses (it ships no types). */
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
type S3rverClass = new (options: Record<string, unknown>) => S3rverInstance;

const require = createRequire(import.meta.url);

/** s3rver's own credentials (it checks signatures made with them). */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

export interface TestS3 {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  readonly bucket: string;
  readonly directory: string;
  /** The settings of an `s3` storage on it (`STORAGE_DRIVER=s3` and `S3_*`). */
  readonly env: Readonly<Record<string, string>>;
  /** Options of `new S3Storage(...)` on it. */
  readonly options: {
    endpoint: string;
    region: string;
    bucket: string;
    accessKeyId: string;
    secretAccessKey: string;
    forcePathStyle: boolean;
  };
  close(): Promise<void>;
}

/**
 * A real S3-compatible server (s3rver) on loopback, port chosen by the system, its data in a
 * temporary folder removed by `close()`. Path-style addressing, credentials `S3RVER`/`S3RVER`,
 * the bucket made at start (its name must be a valid S3 name). It does not enforce a presigned
 * PUT's signed `Content-Length` nor `x-amz-checksum-sha256`: tests of those check what the
 * platform does, not what the bucket refuses.
 */
export async function startTestS3(bucket = 'bucket-one'): Promise<TestS3> {
  const S3rver = require('s3rver') as S3rverClass;
  const directory = await mkdtemp(join(tmpdir(), 'gw-s3rver-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: [{ name: bucket }],
  });
  const address = await server.run();
  const endpoint = `http://127.0.0.1:${String(address.port)}`;
  const options = {
    endpoint,
    region: 'us-east-1',
    bucket,
    ...S3RVER_CREDENTIALS,
    forcePathStyle: true,
  };
  return {
    endpoint,
    bucket,
    directory,
    options,
    env: {
      STORAGE_DRIVER: 's3',
      S3_ENDPOINT: endpoint,
      S3_REGION: 'us-east-1',
      S3_BUCKET: bucket,
      S3_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
      S3_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
      S3_FORCE_PATH_STYLE: 'true',
    },
    async close() {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
