import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { enabledModules } from '../../src/app.ts';
import type { Config } from '../../src/platform/config/index.ts';
import { withTransaction } from '../../src/platform/db/index.ts';
import type { Platform } from '../../src/platform/modules/index.ts';
import { createPlatform } from '../../src/platform/runtime/index.ts';
import { LogCapture, testConfig } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { crashEvent, crashModule, crashState } from '../helpers/events-crash.ts';
import { eventually } from '../helpers/jobs-harness.ts';

const CHILD = fileURLToPath(new URL('../helpers/events-child.ts', import.meta.url));

/** Starts the child and resolves with it once it printed a line matching `ready`. */
function startChild(
  url: string,
  mode: 'publish' | 'handle',
): { child: ChildProcess; line: (pattern: RegExp) => Promise<RegExpMatchArray> } {
  const child = spawn(process.execPath, [CHILD, url, mode], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString('utf8')));
  const line = (pattern: RegExp) =>
    eventually(
      `the child to print ${String(pattern)}`,
      async () => {
        if (child.exitCode !== null) throw new Error(`child exited ${child.exitCode}: ${err}`);
        return out.match(pattern) ?? undefined;
      },
      30_000,
    );
  return { child, line };
}

async function kill9(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

describe('domain events survive a process killed with SIGKILL', () => {
  let config: Config;
  let tdb: TestDatabase;
  const platforms: Platform[] = [];

  /** A platform on the test database; `work`: it dispatches (false: it only publishes). */
  const platform = async (work = true) => {
    const p = await createPlatform(config, {
      modules: enabledModules(config, [crashModule]),
      database: tdb.database,
      connect: false,
      redis: null,
      work,
      logDestination: new LogCapture(),
    });
    platforms.push(p);
    return p;
  };
  const stopAll = async () => {
    for (const p of platforms.splice(0)) await p.close();
  };
  const states = async (id: string) =>
    (
      await tdb.database.pool.query<{ state: string; attempts: number }>(
        `select state, attempts from gw_event_delivery
          where event_id = $1 and subscriber = 'evcrash.recorder'`,
        [id],
      )
    ).rows;

  before(async () => {
    config = testConfig({ EVENTS_POLL_INTERVAL_MS: '100' });
    tdb = await createTestDatabase({ config });
  });
  after(async () => {
    await stopAll();
    await tdb?.drop();
  });

  test('killed right after its commit, before any dispatch: the event is delivered once by another process', async () => {
    const { child, line } = startChild(tdb.url, 'publish');
    try {
      const [, id = ''] = await line(/committed (\S+)/);
      await kill9(child);
      assert.equal((await states(id)).length, 0, 'not dispatched before the kill');
      await platform();
      await eventually('handed over', async () =>
        crashState.handled.some((h) => h.id === id) ? true : undefined,
      );
      await eventually(
        'recorded done',
        async () => (await states(id)).every((s) => s.state === 'done') || undefined,
      );
      await sleep(300);
      assert.deepEqual(
        crashState.handled.filter((h) => h.id === id),
        [{ id, attempt: 1 }],
      );
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  test('killed in the middle of a handler: once its claim expires, another process hands the event over again, once', async () => {
    // Only the child dispatches until it is killed.
    await stopAll();
    const publisher = await platform(false);
    const { child, line } = startChild(tdb.url, 'handle');
    try {
      await line(/ready/);
      const { id } = await withTransaction(tdb.database.db, (trx) =>
        publisher.events.publish(trx, crashEvent, { data: { n: 2 } }),
      );
      await line(new RegExp(`handling ${id}`));
      await kill9(child);
      await platform();
      // The child's claim holds until its lease ends (handler timeout 2 s plus a margin of 5 s).
      await eventually(
        'handed over again after the lease',
        async () => (crashState.handled.some((h) => h.id === id) ? true : undefined),
        20_000,
      );
      await eventually(
        'recorded done',
        async () => (await states(id)).every((s) => s.state === 'done') || undefined,
      );
      assert.deepEqual(
        crashState.handled.filter((h) => h.id === id),
        [{ id, attempt: 2 }],
      );
      assert.deepEqual(await states(id), [{ state: 'done', attempts: 2 }]);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
