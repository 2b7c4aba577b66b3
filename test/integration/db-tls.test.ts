import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { sql } from 'kysely';
import { pino } from 'pino';
import {
  openDatabase,
  startEmbeddedPostgres,
  type EmbeddedServer,
} from '../../src/platform/db/index.ts';
import { testConfig } from '../helpers/app.ts';

/** A CA and a server certificate for 127.0.0.1, made with openssl for this test only. */
function makeCertificates(dir: string): { ca: string; cert: string; key: string } {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  run(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '1',
    '-subj',
    '/CN=groundwork test CA',
  );
  run(
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    'server.key',
    '-out',
    'server.csr',
    '-subj',
    '/CN=127.0.0.1',
  );
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  run(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.pem',
    '-days',
    '1',
    '-extfile',
    'ext.cnf',
  );
  return { ca: join(dir, 'ca.pem'), cert: join(dir, 'server.pem'), key: join(dir, 'server.key') };
}

/** PostgreSQL runs as the `postgres` user when we are root: it must be able to read its key. */
function giveToPostgres(...files: string[]): void {
  if (process.getuid?.() !== 0) return;
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }));
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }));
  for (const file of files) chownSync(file, uid, gid);
}

describe('DATABASE_SSL against a PostgreSQL server with TLS', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-tls-pg-'));
  chmodSync(dir, 0o755); // the server runs as `postgres` when we are root: it must reach its files
  const certs = makeCertificates(dir);
  giveToPostgres(certs.cert, certs.key);
  const logger = pino({ level: 'silent' });
  const server: EmbeddedServer = await startEmbeddedPostgres(join(dir, 'data'), logger, {
    postgresFlags: [
      '-c',
      'ssl=on',
      '-c',
      `ssl_cert_file=${certs.cert}`,
      '-c',
      `ssl_key_file=${certs.key}`,
    ],
  });
  test.after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function usesTls(overrides: Record<string, string>): Promise<boolean> {
    const database = await openDatabase(testConfig({ DATABASE_URL: server.url, ...overrides }), {
      logger,
    });
    try {
      const { rows } = await sql<{
        ssl: boolean;
      }>`select ssl from pg_stat_ssl where pid = pg_backend_pid()`.execute(database.db);
      return rows[0]?.ssl ?? false;
    } finally {
      await database.close();
    }
  }

  test('disable connects in clear text', async () => {
    assert.equal(await usesTls({ DATABASE_SSL: 'disable' }), false);
  });

  test('require encrypts without checking the certificate', async () => {
    assert.equal(await usesTls({ DATABASE_SSL: 'require' }), true);
  });

  test('verify-full with the CA file encrypts and verifies', async () => {
    assert.equal(
      await usesTls({ DATABASE_SSL: 'verify-full', DATABASE_SSL_CA_FILE: certs.ca }),
      true,
    );
  });

  test('verify-full refuses a certificate it cannot verify', async () => {
    await assert.rejects(
      usesTls({ DATABASE_SSL: 'verify-full' }),
      /self-signed|unable to verify|certificate/i,
    );
  });
});
