// Runs s3rver in a process of its own (test/helpers/s3.ts starts it): argv directory, bucket.
// It needs OpenSSL's legacy provider (its listing continuation tokens use DES), which the parent
// turns on for this process only. Prints `{"port":N}` once listening; stops on SIGTERM.
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';

const require = createRequire(import.meta.url);
const S3rver = require('s3rver') as new (options: Record<string, unknown>) => {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
};
const [directory, bucket] = process.argv.slice(2);
const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: true,
  directory,
  configureBuckets: [{ name: bucket }],
});
const address = await server.run();
process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
process.on('SIGTERM', () => {
  void server.close().finally(() => process.exit(0));
});
