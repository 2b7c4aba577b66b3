/**
 * The bimodal start-up state (issue 23, part 3): starts bench/http-server.ts's Groundwork server
 * many times, loads its health route for a few seconds each time, and prints per start the
 * requests/s, the server's CPU per request and the young generation's behaviour read from
 * `--trace-gc-nvp` (scavenges, their mean pause, bytes promoted over bytes allocated), with the
 * heap spaces at start and at the end. A start is "slow" when it promotes much more than the
 * others: compare starts relatively (the machine may be busy), not the absolute figures.
 *
 *   node bench/startup-bimodal.ts                   # 10 starts, 4 s of load each
 *   STARTUP_RUNS=20 STARTUP_SECONDS=6 node bench/startup-bimodal.ts
 *   STARTUP_NODE_FLAGS='--max-semi-space-size=16' node bench/startup-bimodal.ts   # a variant
 *   STARTUP_KIND=fastify node bench/startup-bimodal.ts                             # the control
 */
import autocannon from 'autocannon';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import type { HeapSpaceInfo, HeapInfo } from 'node:v8';
import { HEALTH_PATH } from './http-data.ts';

const RUNS = Number(process.env.STARTUP_RUNS ?? 10);
const SECONDS = Number(process.env.STARTUP_SECONDS ?? 4);
const WARMUP = Number(process.env.STARTUP_WARMUP ?? 2);
const KIND = process.env.STARTUP_KIND ?? 'groundwork';
const PATH = process.env.STARTUP_PATH ?? HEALTH_PATH;
const split = (flags: string | undefined) => (flags ?? '').split(' ').filter((f) => f !== '');
const FLAGS = split(process.env.STARTUP_NODE_FLAGS);
/** A second set of flags to compare with: the starts alternate between the two. */
const FLAGS_B =
  process.env.STARTUP_NODE_FLAGS_B === undefined ? null : split(process.env.STARTUP_NODE_FLAGS_B);

interface Gc {
  /** Per scavenge: new space capacity, allocated, survived, promoted (MB), pause (ms). */
  detail: string[];
  /** The new space's capacity after the last GC (MB). */
  capacityMb: number;
  /** Allocation sites V8 decided to pretenure (with `--trace-pretenuring`). */
  tenured: number;
  scavenges: number;
  scavengeMs: number;
  maxScavengeMs: number;
  marks: number;
  allocated: number;
  promoted: number;
}

/** Sums the `--trace-gc-nvp` lines (`key=value` pairs, `gc=s` for a scavenge). */
function readNvp(lines: string[]): Gc {
  const gc: Gc = {
    detail: [],
    capacityMb: 0,
    tenured: 0,
    scavenges: 0,
    scavengeMs: 0,
    maxScavengeMs: 0,
    marks: 0,
    allocated: 0,
    promoted: 0,
  };
  const mb = (key: string, fields: Map<string, string>) =>
    (Number(fields.get(key) ?? 0) / 2 ** 20).toFixed(1);
  for (const line of lines) {
    if (line.includes('pretenuring:') && line.endsWith('=> tenure')) gc.tenured += 1;
    if (!line.includes('gc=')) continue;
    const fields = new Map<string, string>();
    for (const m of line.matchAll(/([a-z_.]+)=([^\s]+)/g)) fields.set(m[1] ?? '', m[2] ?? '');
    const pause = Number(fields.get('pause') ?? 0);
    gc.allocated += Number(fields.get('allocated') ?? 0);
    gc.promoted += Number(fields.get('promoted') ?? 0);
    gc.capacityMb = Number(fields.get('new_space_capacity') ?? 0) / 2 ** 20;
    gc.detail.push(
      `${fields.get('gc') ?? '?'} cap ${mb('new_space_capacity', fields)} alloc ${mb('allocated', fields)} surv ${mb('new_space_survived', fields)} prom ${mb('promoted', fields)} q ${fields.get('quarantined_pages') ?? '?'} ${pause.toFixed(1)}ms`,
    );
    if (fields.get('gc') === 's') {
      gc.scavenges += 1;
      gc.scavengeMs += pause;
      gc.maxScavengeMs = Math.max(gc.maxScavengeMs, pause);
    } else {
      gc.marks += 1;
    }
  }
  return gc;
}

interface Probe {
  heap: HeapInfo;
  spaces: HeapSpaceInfo[];
}

function spaces(probe: Probe): string {
  const mb = (n: number) => (n / 2 ** 20).toFixed(1);
  return probe.spaces
    .filter((s) => s.space_name === 'new_space' || s.space_name === 'old_space')
    .map((s) => `${s.space_name} ${mb(s.space_used_size)}/${mb(s.space_size)} MB`)
    .join(', ');
}

async function oneStart(run: number, flags: string[]): Promise<void> {
  const child = fork(new URL('./http-server.ts', import.meta.url), [KIND], {
    execArgv: [
      ...process.execArgv,
      '--trace-gc-nvp',
      '--import',
      new URL('./startup-probe.ts', import.meta.url).href,
      ...flags,
    ],
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const out: string[] = [];
  let partial = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    const text = partial + chunk.toString('utf8');
    const lines = text.split('\n');
    partial = lines.pop() ?? '';
    out.push(...lines);
  });
  // The server answers every message with `{ cpuMicros }`, the probe only `{ probe: 'heap' }`:
  // each question waits for the answer of its kind sent after it (older ones are skipped).
  let asked = 0;
  const ask = async <T>(key: string, probe: 'heap' | 'cpu'): Promise<T> => {
    const mine = ++asked;
    const reply = new Promise<T>((resolve) => {
      const on = (m: Record<string, unknown>) => {
        if (key in m && m.seq === mine) {
          child.off('message', on);
          resolve(m as T);
        }
      };
      child.on('message', on);
    });
    child.send({ probe, seq: mine });
    return reply;
  };
  const [{ port }] = (await once(child, 'message')) as [{ port: number }];
  const atStart = await ask<Probe>('heap', 'heap');
  const bootGc = readNvp(out.splice(0));
  const url = `http://127.0.0.1:${String(port)}${PATH}`;
  // A warm-up as bench/http.ts does (JIT): its GC lines count with the load's.
  await autocannon({ url, connections: 50, duration: WARMUP });
  const cpu0 = (await ask<{ cpuMicros: number }>('cpuMicros', 'cpu')).cpuMicros;
  const result = await autocannon({ url, connections: 50, duration: SECONDS });
  const cpu1 = (await ask<{ cpuMicros: number }>('cpuMicros', 'cpu')).cpuMicros;
  const atEnd = await ask<Probe>('heap', 'heap');
  child.kill('SIGTERM');
  await once(child, 'exit');
  const gc = readNvp(out);
  const share = gc.allocated > 0 ? gc.promoted / gc.allocated : 0;
  const requests = result.requests.total;
  process.stdout.write(
    `${String(run).padStart(2)}${FLAGS_B === null ? '' : ` [${flags === FLAGS ? 'A' : 'B'}]`} ${Math.round(result.requests.average).toString().padStart(6)} req/s ` +
      `cpu ${(requests > 0 ? (cpu1 - cpu0) / requests : 0).toFixed(1).padStart(5)} µs/req ` +
      `p99 ${String(result.latency.p99).padStart(3)} ms | load: ${String(gc.scavenges).padStart(4)} scavenges ` +
      `mean ${(gc.scavenges > 0 ? gc.scavengeMs / gc.scavenges : 0).toFixed(2)} ms max ${gc.maxScavengeMs.toFixed(1)} ms, ` +
      `${String(gc.marks)} mark-compacts, promoted ${(share * 100).toFixed(1)}% of ${(gc.allocated / 2 ** 30).toFixed(2)} GB ` +
      `${share > 0.05 ? 'SLOW' : 'fast'}${flags.includes('--trace-pretenuring') ? ` | sites pretenured: boot ${String(bootGc.tenured)}, load ${String(gc.tenured)}` : ''}\n` +
      `   boot: new space ${bootGc.capacityMb.toFixed(0)} MB, ${String(bootGc.scavenges)} scavenges, ${String(bootGc.marks)} mark-compacts, promoted ${(bootGc.promoted / 2 ** 20).toFixed(1)} MB of ${(bootGc.allocated / 2 ** 20).toFixed(1)} MB | ` +
      `at start: ${spaces(atStart)} | at end: ${spaces(atEnd)}\n` +
      (process.env.STARTUP_DETAIL === '1'
        ? `   boot GCs: ${bootGc.detail.slice(-4).join('; ')}\n   load GCs: ${gc.detail.slice(0, 8).join('; ')}\n`
        : ''),
  );
}

process.stdout.write(
  `${KIND} ${PATH}, ${String(RUNS)} starts, ${String(WARMUP)} s warm-up and ${String(SECONDS)} s measured each, flags: ${FLAGS.join(' ') || '(none)'}${FLAGS_B === null ? '' : ` [A], alternating with ${FLAGS_B.join(' ') || '(none)'} [B]`}\n`,
);
for (let run = 1; run <= RUNS; run++)
  await oneStart(run, FLAGS_B !== null && run % 2 === 0 ? FLAGS_B : FLAGS);
