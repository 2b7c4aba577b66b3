import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const CHILD = fileURLToPath(new URL('./s3rver-process.ts', import.meta.url));

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
 * A real S3-compatible server (s3rver) on loopback, in a child process (it needs OpenSSL's
 * legacy provider for its listing tokens), port chosen by the system, its data in a temporary
 * folder removed by `close()`. Path-style addressing, credentials `S3RVER`/`S3RVER`,
 * the bucket made at start (its name must be a valid S3 name). It does not enforce a presigned
 * PUT's signed `Content-Length` nor `x-amz-checksum-sha256`: tests of those check what the
 * platform does, not what the bucket refuses.
 */
export async function startTestS3(bucket = 'bucket-one'): Promise<TestS3> {
  const directory = await mkdtemp(join(tmpdir(), 'gw-s3rver-'));
  const child = spawn(process.execPath, ['--openssl-legacy-provider', CHILD, directory, bucket], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  const lines = createInterface({ input: child.stdout });
  const first = await Promise.race([
    once(lines, 'line').then(([line]) => String(line)),
    exited.then(() => null),
  ]);
  if (first === null) throw new Error('s3rver did not start');
  lines.close();
  const { port } = JSON.parse(first) as { port: number };
  const endpoint = `http://127.0.0.1:${String(port)}`;
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
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      await rm(directory, { recursive: true, force: true });
    },
  };
}
