/**
 * A load-generating child of the realtime benchmark (its own process, so its file descriptors and
 * CPU are not the server's). Told over IPC what to do:
 *
 * - `{ kind: 'idle', url, count, addresses }`: opens `count` connections (spread over the
 *   loopback source addresses), authenticates them anonymously, holds them; answers `ready`.
 * - `{ kind: 'subscribe', url, count, channels, addresses }`: opens `count` connections, each
 *   subscribed to `channels(i)`; counts events and records delivery latency (the event's
 *   `data.ts`, same machine clock); answers `ready`, and its tally to `report`.
 */
import WebSocket from 'ws';

interface Job {
  kind: 'idle' | 'subscribe';
  url: string;
  count: number;
  addresses: string[];
  /** For `subscribe`: `broadcast` (every socket on bench.broadcast) or `personal` (bench.user:<i>). */
  channels?: 'broadcast' | 'personal';
  offset?: number;
}

const sockets: WebSocket[] = [];
let received = 0;
const latencies: number[] = [];

function open(job: Job, i: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(job.url, ['groundwork.v1.json'], {
      localAddress: job.addresses[i % job.addresses.length],
      perMessageDeflate: false,
    });
    sockets.push(ws);
    let subscribed = job.kind === 'idle';
    ws.on('open', () => {
      ws.send('{"type":"auth"}');
    });
    ws.on('message', (raw: Buffer) => {
      const text = raw.toString();
      if (text.startsWith('{"type":"event"')) {
        received += 1;
        const at = text.indexOf('"ts":');
        if (at > 0 && latencies.length < 2_000_000)
          latencies.push(Date.now() - Number.parseInt(text.slice(at + 5), 10));
        return;
      }
      if (text.startsWith('{"type":"ready"')) {
        if (job.kind === 'idle') resolve();
        else {
          const channel =
            job.channels === 'personal'
              ? `bench.user:${String((job.offset ?? 0) + i)}`
              : 'bench.broadcast';
          ws.send(JSON.stringify({ type: 'subscribe', channel }));
        }
        return;
      }
      if (!subscribed && text.startsWith('{"type":"subscribed"')) {
        subscribed = true;
        resolve();
      }
    });
    ws.once('error', reject);
  });
}

process.on('message', (message: Job | 'report' | 'reset') => {
  if (message === 'report') {
    const sorted = latencies.slice().sort((a, b) => a - b);
    const q = (p: number) =>
      sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
    process.send?.({ received, p50: q(0.5), p99: q(0.99), max: sorted.at(-1) ?? 0 });
    return;
  }
  if (message === 'reset') {
    received = 0;
    latencies.length = 0;
    return;
  }
  void (async () => {
    const job = message;
    // Opened in waves: a SYN flood of thousands at once overflows the listen backlog.
    for (let i = 0; i < job.count; i += 200) {
      const wave = [];
      for (let j = i; j < Math.min(job.count, i + 200); j++) wave.push(open(job, j));
      await Promise.all(wave);
    }
    process.send?.({ ready: sockets.length });
  })().catch((error: unknown) => {
    process.send?.({ error: String(error) });
  });
});
