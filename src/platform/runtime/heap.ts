import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * One full garbage collection, run once a process has built its app and before its port opens.
 *
 * Why: a Groundwork boot allocates a few hundred megabytes (modules, compiled schemas, routes),
 * and V8 starts serving with whatever of it the last boot-time scavenge left in the young
 * generation. In that state (most starts of a server with an app enabled, measured in
 * docs/benchmarks.md, "Promotion under a paced load") about 8% of everything each request
 * allocates is then promoted to the old generation and collected only by mark-compacts of 60 to
 * 70 ms, with scavenges of 8 to 12 ms instead of under 1 ms: the tail of every latency
 * percentile, and a resting RSS of 600 MB or more. After one full collection at start, no start
 * of the same server entered that state. Node has no API to ask for a collection:
 * `--expose-gc` is turned on for this call (the documented way to get `gc` without starting the
 * process with that flag) and `gc` is taken from a fresh context, so nothing global changes.
 */
export function collectBootGarbage(): { ms: number; heapBefore: number; heapAfter: number } {
  const started = performance.now();
  const heapBefore = process.memoryUsage().heapUsed;
  const exposed = (globalThis as { gc?: () => void }).gc;
  let gc = exposed;
  if (gc === undefined) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
    setFlagsFromString('--no-expose-gc');
  }
  // Twice: objects freed by the first (weak references, finalizers) go with the second.
  gc();
  gc();
  return {
    ms: performance.now() - started,
    heapBefore,
    heapAfter: process.memoryUsage().heapUsed,
  };
}
