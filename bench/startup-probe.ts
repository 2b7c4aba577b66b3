/**
 * Preloaded (`--import`) into bench/http-server.ts by bench/startup-bimodal.ts: answers
 * `{ probe: 'heap', seq }` with V8's heap and heap-space statistics and `{ probe: 'cpu', seq }`
 * with the CPU time so far, each with its `seq`, so that a start's state can be read without
 * changing the server under test (which answers every message with an unnumbered `cpuMicros`).
 */
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';

process.on('message', (message: unknown) => {
  const { probe, seq } = (message ?? {}) as { probe?: string; seq?: number };
  if (probe === 'cpu') {
    const { user, system } = process.cpuUsage();
    process.send?.({ cpuMicros: user + system, seq });
  }
  if (probe === 'heap')
    process.send?.({ heap: getHeapStatistics(), spaces: getHeapSpaceStatistics(), seq });
});
