/**
 * The webhooks benchmark's receiver, in its own process (as a real receiver would be): one HTTP
 * server per endpoint on 127.0.0.1 (each endpoint its own host:port, so each gets its own
 * connection pool and breaker, as distinct receivers would). `hang` servers never answer (the
 * deliverer's timeout ends those attempts). Records, per request, the arrival time minus the
 * event's `timestamp` (the first attempt's lag) and answers the parent's `stats` messages.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

interface Start {
  kind: 'start';
  healthy: number;
  hanging: number;
}
interface Stats {
  kind: 'stats';
  reset?: boolean;
}

const servers: Server[] = [];
let received = 0;
let hungRequests = 0;
let lags: number[] = [];
let lastAt = 0;
const seen = new Set<string>();
let duplicates = 0;

function healthyServer(): Server {
  return createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const now = Date.now();
      received += 1;
      lastAt = now;
      const id = String(req.headers['webhook-id']);
      if (seen.has(id)) duplicates += 1;
      else seen.add(id);
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { timestamp: string };
        lags.push(now - Date.parse(body.timestamp));
      } catch {
        // not ours
      }
      res.writeHead(204).end();
    });
  });
}

function hangingServer(): Server {
  return createServer((req) => {
    hungRequests += 1;
    req.resume(); // read the body, never answer
  });
}

process.on('message', (raw: Start | Stats) => {
  void (async () => {
    if (raw.kind === 'start') {
      const ports: { port: number; hangs: boolean }[] = [];
      for (let i = 0; i < raw.healthy + raw.hanging; i++) {
        const hangs = i >= raw.healthy;
        const server = hangs ? hangingServer() : healthyServer();
        server.keepAliveTimeout = 60_000;
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        servers.push(server);
        ports.push({ port: (server.address() as AddressInfo).port, hangs });
      }
      process.send?.({ kind: 'ready', ports });
      return;
    }
    process.send?.({ kind: 'stats', received, hungRequests, lags, lastAt, duplicates });
    if (raw.reset) {
      received = 0;
      hungRequests = 0;
      lags = [];
      lastAt = 0;
      duplicates = 0;
      seen.clear();
    }
  })();
});
process.on('disconnect', () => process.exit(0));
