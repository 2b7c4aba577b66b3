/**
 * Chaos: the disk of the log destination fills up (stdout redirected to a file on a tiny tmpfs).
 *
 * Promise: the server keeps answering every request when its log writes fail with ENOSPC; the
 * lines it cannot write are dropped and counted in `log_lines_dropped_total`, not a crash and
 * not unbounded memory; once space is freed, lines are written again.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  closeSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { startServer } from '../helpers/chaos.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { keepAliveLoad, tally } from '../helpers/load.ts';
import { get } from '../helpers/process.ts';

const run = promisify(execFile);
const TMPFS_BYTES = 512 * 1024;

/** Mounts a tmpfs of `bytes` on a new directory, or says why it cannot. */
async function tinyDisk(): Promise<{ dir: string } | { skip: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'gw-chaos-disk-'));
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${String(TMPFS_BYTES)}`, 'tmpfs', dir]);
    return { dir };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    return {
      skip: `cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN): ${String(error).split('\n')[0]}`,
    };
  }
}

const disk = await tinyDisk();
const metric = async (port: number, name: string) => {
  const metrics = await get(port, '/metrics');
  const match = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)`, 'm').exec(metrics.body);
  return match ? Number(match[1]) : Number.NaN;
};
/** Long URLs make long request lines, so the 4 MB kept for a failing disk fills in seconds. */
const PADDING = 'x'.repeat(170);

describe(
  'chaos: the log disk is full',
  { skip: 'skip' in disk ? disk.skip : undefined, timeout: 120_000 },
  () => {
    test('the server keeps serving when log writes fail with ENOSPC; dropped lines are counted', async (t) => {
      assert.ok('dir' in disk);
      const { dir } = disk;
      t.after(async () => {
        await run('umount', ['-l', dir]).catch(() => undefined);
        rmSync(dir, { recursive: true, force: true });
      });
      const tdb = await createTestDatabase();
      t.after(() => tdb.drop());
      const logFile = join(dir, 'server.log');
      const fd = openSync(logFile, 'a');
      t.after(() => closeSync(fd));
      // Leave the log about 8 KB: the start-up lines fit, the request lines soon do not.
      const filler = join(dir, 'filler');
      writeFileSync(filler, Buffer.alloc(TMPFS_BYTES - 40 * 1024));
      const server = await startServer(t, {
        role: 'serve',
        stdoutFd: fd,
        env: { DATABASE_URL: tdb.url, RATE_LIMIT_ENABLED: 'false' },
      });

      const load = keepAliveLoad({
        port: server.port,
        concurrency: 4,
        path: (n) => `/health/live?n=${String(n)}&pad=${PADDING}`,
        timeoutMs: 5_000,
      });
      t.after(() => load.stop());
      await sleep(6_000);
      assert.ok(
        server.child.exitCode === null,
        `the server runs on a full disk\n${server.stdout()}`,
      );
      const dropped = await metric(server.port, 'log_lines_dropped_total');
      const errors = await metric(server.port, 'log_write_errors_total');
      const logged = statSync(logFile).size;

      // Space again: lines are written again.
      rmSync(filler);
      await sleep(1_500);
      load.stop();
      const outcomes = await load.done;
      const counts = tally(outcomes);
      const after = statSync(logFile).size;
      t.diagnostic(
        `outcomes ${JSON.stringify(counts)}; ${String(errors)} failed writes, ${String(dropped)} lines dropped while full; log ${String(logged)} bytes when full, ${String(after)} after space was freed`,
      );
      assert.deepEqual(
        Object.keys(counts),
        ['200'],
        `every request answered: ${JSON.stringify(counts)}`,
      );
      assert.ok(errors > 0, `failed writes are counted (${String(errors)})`);
      assert.ok(dropped > 0, `dropped lines are counted (${String(dropped)})`);
      assert.ok(after > logged, 'lines are written again once there is space');
      assert.match(readFileSync(logFile, 'utf8').slice(-4096), /request completed/);
    });
  },
);
