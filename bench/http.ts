/**
 * HTTP benchmark: bare node:http, bare Fastify and Groundwork's full stack, each on a health
 * route and a 20-item JSON route, and Groundwork again with tracing on (every request's span
 * exported over OTLP to a sink receiver here): the cost of tracing. Every server runs in its own
 * child process; autocannon runs here, so the load generator never shares a process with a server.
 */
import { CONNECTIONS, load, PIPELINING, ServerChild, WARMUP_SECONDS } from './lib.ts';
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus } from 'node:os';
import { isDeepStrictEqual } from 'node:util';
import {
  HEALTH,
  HEALTH_PATH,
  ITEMS,
  ITEMS_PATH,
  SERVER_KINDS,
  type ServerKind,
} from './http-data.ts';

const TARGET = 0.7;

/** Groundwork with tracing on (see http-server.ts). */
const TRACED = 'groundwork+tracing';
type Kind = ServerKind | typeof TRACED;
const KINDS: readonly Kind[] = [...SERVER_KINDS, TRACED];

/**
 * An OTLP/HTTP sink: answers every export 200 at once and counts them, so the traced server
 * pays for making, batching, encoding and sending its spans, and nothing waits on a backend.
 */
class Sink {
  exports = 0;
  bytes = 0;
  readonly server: Server = createServer((req, res) => {
    req.on('data', (chunk: Buffer) => (this.bytes += chunk.length));
    req.on('end', () => {
      if (req.url === '/v1/traces') this.exports += 1;
      res.writeHead(200).end();
    });
  });

  async listen(): Promise<string> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return `http://127.0.0.1:${String((this.server.address() as AddressInfo).port)}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const ROUTES = [
  { name: 'health', path: HEALTH_PATH, expected: HEALTH },
  { name: 'items (20)', path: ITEMS_PATH, expected: ITEMS },
] as const;
type RouteName = (typeof ROUTES)[number]['name'];

interface Measurement {
  route: RouteName;
  server: Kind;
  path: string;
  requestsPerSecond: number;
  latencyP99Ms: number;
  latencyAverageMs: number;
  requests: number;
  /** Server process CPU time per request: steadier than requests/s when the machine is shared. */
  serverCpuMicrosPerRequest: number;
}

function durationSeconds(): number {
  const raw = process.env.BENCH_DURATION ?? '10';
  const seconds = Number(raw);
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new Error(`BENCH_DURATION must be a positive number of seconds, got "${raw}"`);
  }
  return seconds;
}

/** Fails fast when a server answers differently, so the figures compare the same work. */
async function checkResponse(kind: Kind, url: string, expected: unknown): Promise<void> {
  const response = await fetch(url);
  const body: unknown = await response.json();
  if (response.status !== 200 || !isDeepStrictEqual(body, expected)) {
    throw new Error(`${kind} ${url} answered ${String(response.status)} with an unexpected body`);
  }
  if ((kind === 'groundwork' || kind === TRACED) && !response.headers.has('x-request-id')) {
    throw new Error('groundwork answered without x-request-id: its full stack is not active');
  }
}

async function measure(
  server: ServerChild<Kind>,
  route: (typeof ROUTES)[number],
  duration: number,
): Promise<Measurement> {
  const url = `http://127.0.0.1:${String(server.port)}${route.path}`;
  await checkResponse(server.kind, url, route.expected);
  process.stderr.write(
    `${server.kind} ${route.path}: ${String(WARMUP_SECONDS)} s warm-up, ${String(duration)} s measured\n`,
  );
  await load(url, WARMUP_SECONDS);
  const cpuBefore = await server.cpuMicros();
  const result = await load(url, duration);
  const cpuAfter = await server.cpuMicros();
  return {
    route: route.name,
    server: server.kind,
    path: route.path,
    requestsPerSecond: result.requests.average,
    latencyP99Ms: result.latency.p99,
    latencyAverageMs: result.latency.average,
    requests: result.requests.total,
    serverCpuMicrosPerRequest: (cpuAfter - cpuBefore) / result.requests.total,
  };
}

function table(results: Measurement[], ratios: Record<RouteName, number>): string {
  const rows = results.map((m) => {
    const ratio = m.server === 'groundwork' ? ratios[m.route].toFixed(2) : '';
    const rps = Math.round(m.requestsPerSecond).toLocaleString('en-US');
    return `| ${m.route} | ${m.server} | ${rps} | ${m.latencyP99Ms.toFixed(1)} | ${m.serverCpuMicrosPerRequest.toFixed(1)} | ${ratio} |`;
  });
  return [
    '| Route | Server | Requests/s (avg) | p99 latency (ms) | Server CPU (µs/request) | Groundwork / Fastify (req/s) |',
    '| --- | --- | ---: | ---: | ---: | ---: |',
    ...rows,
  ].join('\n');
}

export async function main(): Promise<void> {
  const duration = durationSeconds();
  // All servers start first (an idle one costs nothing), then each route is measured on the
  // three servers back to back, so the ratios compare neighbouring moments on a shared machine.
  const servers: ServerChild<Kind>[] = [];
  const results: Measurement[] = [];
  const sink = new Sink();
  const sinkUrl = await sink.listen();
  try {
    for (const kind of KINDS) {
      const script = new URL('./http-server.ts', import.meta.url);
      servers.push(await ServerChild.start(script, kind, kind === TRACED ? [sinkUrl] : []));
    }
    for (const route of ROUTES) {
      for (const server of servers) results.push(await measure(server, route, duration));
    }
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    await sink.close();
  }
  // The traced server really exported (its batches leave at least every 5 s, or 512 spans).
  if (sink.exports === 0) throw new Error('the traced server exported no spans to the sink');

  const rps = (server: Kind, route: RouteName) =>
    results.find((m) => m.server === server && m.route === route)?.requestsPerSecond ?? Number.NaN;
  const ratios = Object.fromEntries(
    ROUTES.map((r) => [r.name, rps('groundwork', r.name) / rps('fastify', r.name)]),
  ) as Record<RouteName, number>;
  const met = Object.values(ratios).every((r) => r >= TARGET);

  const summary = ROUTES.map((r) => `${r.name} ${ratios[r.name].toFixed(2)}`).join(', ');
  const verdict = `target >= ${TARGET.toFixed(2)}: ${met ? 'met' : 'MISSED'}`;
  const cpu = (server: Kind, route: RouteName) =>
    results.find((m) => m.server === server && m.route === route)?.serverCpuMicrosPerRequest ??
    Number.NaN;
  // Tracing's cost: requests/s with it on over off, and the server CPU it adds per request.
  const tracing = Object.fromEntries(
    ROUTES.map((r) => [
      r.name,
      {
        requestsPerSecondRatio: rps(TRACED, r.name) / rps('groundwork', r.name),
        addedCpuMicrosPerRequest: cpu(TRACED, r.name) - cpu('groundwork', r.name),
      },
    ]),
  ) as Record<RouteName, { requestsPerSecondRatio: number; addedCpuMicrosPerRequest: number }>;
  const tracingSummary = ROUTES.map(
    (r) =>
      `${r.name} ${tracing[r.name].requestsPerSecondRatio.toFixed(2)} (+${tracing[r.name].addedCpuMicrosPerRequest.toFixed(1)} µs CPU/request)`,
  ).join(', ');
  process.stdout.write(
    `${table(results, ratios)}\n\nGroundwork / bare Fastify requests/s: ${summary} (${verdict})\n` +
      `Tracing on / off requests/s: ${tracingSummary}; ${String(sink.exports)} OTLP exports, ${String(Math.round(sink.bytes / 1024))} KB\n`,
  );

  const report = {
    benchmark: 'http',
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    settings: {
      connections: CONNECTIONS,
      pipelining: PIPELINING,
      warmupSeconds: WARMUP_SECONDS,
      durationSeconds: duration,
    },
    results,
    ratios,
    target: TARGET,
    met,
    tracing: { ...tracing, otlpExports: sink.exports, otlpBytes: sink.bytes },
  };
  const dir = new URL('./results/', import.meta.url);
  await mkdir(dir, { recursive: true });
  await writeFile(new URL('http.json', dir), `${JSON.stringify(report, null, 2)}\n`);
}
