// GC_AT_START (src/platform/runtime/heap.ts): one full garbage collection once the app is built,
// before the port opens, so the server never serves in the state where V8 promotes part of every
// request (docs/benchmarks.md, "Promotion under a paced load").
import assert from 'node:assert/strict';
import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { buildTestApp } from '../helpers/app.ts';

/** The forced full collections V8 reports while `fn` runs (and shortly after: entries are queued). */
async function forcedMajorGcs(fn: () => Promise<void>): Promise<number> {
  const entries: PerformanceEntry[] = [];
  const observer = new PerformanceObserver((list) => entries.push(...list.getEntries()));
  observer.observe({ entryTypes: ['gc'] });
  try {
    await fn();
    await sleep(100);
  } finally {
    observer.disconnect();
  }
  return entries.filter((e) => {
    const detail = e.detail as { kind: number; flags: number };
    return (
      detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR &&
      (detail.flags & constants.NODE_PERFORMANCE_GC_FLAGS_FORCED) !== 0
    );
  }).length;
}

test('GC_AT_START=true: a full collection before the app is ready, logged, and gc() left unexposed', async (t) => {
  let logs: string[] = [];
  const forced = await forcedMajorGcs(async () => {
    const built = await buildTestApp({ GC_AT_START: 'true' });
    t.after(() => built.app.close());
    logs = built.logs.raw;
  });
  assert.ok(forced >= 2, `two forced full collections at start (saw ${String(forced)})`);
  const line = logs
    .map((l) => JSON.parse(l) as { msg?: string; ms?: number; heapAfterBytes?: number })
    .find((l) => l.msg === 'heap collected after start');
  assert.ok(line, 'the start-up line says the heap was collected');
  assert.equal(typeof line.ms, 'number');
  assert.ok((line.heapAfterBytes ?? 0) > 0);
  assert.equal((globalThis as { gc?: unknown }).gc, undefined, 'no global gc() left behind');
});

test('GC_AT_START=false (the tests’ setting): no forced collection at start', async (t) => {
  const forced = await forcedMajorGcs(async () => {
    const built = await buildTestApp({ GC_AT_START: 'false' });
    t.after(() => built.app.close());
  });
  assert.equal(forced, 0);
});
