import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import {
  createLogDestination,
  createLogger,
  flushLogger,
} from '../../src/platform/observability/index.ts';
import { isoTime } from '../../src/platform/observability/logger.ts';

test("isoTime writes the same text as pino's isoTime", (t) => {
  const instants = [
    Date.UTC(2026, 0, 2, 3, 4, 5, 0),
    Date.UTC(2026, 0, 2, 3, 4, 5, 7),
    Date.UTC(2026, 0, 2, 3, 4, 5, 78),
    Date.UTC(2026, 0, 2, 3, 4, 5, 678),
    Date.UTC(2026, 0, 2, 3, 4, 6, 1),
    Date.UTC(2026, 11, 31, 23, 59, 59, 999),
    Date.UTC(2027, 0, 1, 0, 0, 0, 0),
  ];
  for (const now of instants) {
    t.mock.method(Date, 'now', () => now);
    assert.equal(isoTime(), pino.stdTimeFunctions.isoTime());
    t.mock.restoreAll();
  }
});

test('the batched destination writes every line, in order, and flushLogger waits for them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-log-'));
  try {
    const file = join(dir, 'out.log');
    const logger = createLogger({ level: 'info', destination: createLogDestination(file) });
    for (let i = 0; i < 500; i++) logger.info({ i }, 'line');
    await flushLogger(logger);
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    assert.equal(lines.length, 500);
    assert.deepEqual(
      lines.map((l) => (JSON.parse(l) as { i: number }).i),
      Array.from({ length: 500 }, (_, i) => i),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
