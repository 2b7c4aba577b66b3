/**
 * The steady-rate client of `steadyLatency` (lib.ts), run as a child process of its own: it
 * receives `{ url, rate, duration, options }`, answers `{ result }` or `{ error }` and exits.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
// Only a type from lib.ts: loading lib.ts (autocannon, pg) would add to this small process's heap.
import type { SteadyResult } from './lib.ts';

/** What `steadyLatency` passes: lib.ts's CONNECTIONS, PIPELINING and STEADY_WARMUP_SECONDS. */
export interface SteadySettings {
  connections: number;
  pipelining: number;
  warmupSeconds: number;
}

/** The loop of `steadyLatency` (lib.ts), in this process. */
export async function runSteady(
  url: string,
  rate: number,
  duration: number,
  settings: SteadySettings,
  options: { headers?: Record<string, string>; status?: number } = {},
): Promise<SteadyResult> {
  const target = new URL(url);
  const pool = new Pool(target.origin, {
    connections: settings.connections,
    pipelining: settings.pipelining,
  });
  const status = options.status ?? 200;
  const warmup = Math.round(rate * settings.warmupSeconds);
  const total = warmup + Math.max(1, Math.round(rate * duration));
  const latencies: number[] = [];
  const failures: string[] = [];
  const inFlight = new Set<Promise<void>>();
  const started = performance.now();
  let measuredFrom = 0;
  const send = (scheduled: number, measured: boolean) => {
    const done = pool
      .request({
        path: `${target.pathname}${target.search}`,
        method: 'GET',
        ...(options.headers ? { headers: options.headers } : {}),
      })
      .then(async (res) => {
        await res.body.dump();
        if (res.statusCode !== status) failures.push(String(res.statusCode));
        if (measured) latencies.push(performance.now() - scheduled);
      })
      .catch((error: unknown) => {
        failures.push(String(error));
      })
      .finally(() => inFlight.delete(done));
    inFlight.add(done);
  };
  let sent = 0;
  while (sent < total) {
    const now = performance.now();
    // Every request whose time has come (a late timer sends the ones it missed at once).
    while (sent < total && started + (sent * 1000) / rate <= now) {
      if (sent === warmup) measuredFrom = performance.now();
      send(started + (sent * 1000) / rate, sent >= warmup);
      sent += 1;
    }
    await sleep(1);
  }
  await Promise.all([...inFlight]);
  const seconds = (performance.now() - measuredFrom) / 1000;
  await pool.close();
  if (failures.length > 0)
    throw new Error(`${url}: ${String(failures.length)} failures (first: ${failures[0] ?? ''})`);
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)] ?? 0;
  return {
    offered: Math.round(rate),
    rps: latencies.length / seconds,
    p50: Math.round(at(0.5) * 10) / 10,
    p99: Math.round(at(0.99) * 10) / 10,
    max: Math.round((latencies.at(-1) ?? 0) * 10) / 10,
  };
}

if (process.send !== undefined) {
  process.once(
    'message',
    (message: {
      url: string;
      rate: number;
      duration: number;
      settings: SteadySettings;
      options: { headers?: Record<string, string>; status?: number };
    }) => {
      runSteady(
        message.url,
        message.rate,
        message.duration,
        message.settings,
        message.options,
      ).then(
        (result) => process.send?.({ result }, () => process.exit(0)),
        (error: unknown) => process.send?.({ error: String(error) }, () => process.exit(0)),
      );
    },
  );
}
