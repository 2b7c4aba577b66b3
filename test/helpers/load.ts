// Client-side load for end-to-end and chaos tests: keep-alive loops against a real port, every
// request's outcome recorded (status or error code), so a test can say what happened to each one.
import { Agent, request as httpRequest, type OutgoingHttpHeaders } from 'node:http';
import { performance } from 'node:perf_hooks';

export interface Outcome {
  /** The request's number (unique in one run); tests put it in the URL to find its log line. */
  n: number;
  method: string;
  path: string;
  /** The HTTP status, when a complete answer arrived. */
  status?: number;
  /** The error code (`ECONNREFUSED`, `ECONNRESET`, `TIMEOUT`...), when none did. */
  error?: string;
  /** The answer's `Connection` header. */
  connection?: string;
  contentType?: string;
  body?: string;
  /** Whether the request went out on a socket that had carried an earlier request. */
  reused: boolean;
  /** Milliseconds from `performance.now()` at send, and how long the answer took. */
  sentAt: number;
  ms: number;
}

export interface SendOptions {
  method?: string;
  headers?: OutgoingHttpHeaders;
  body?: string;
  timeoutMs?: number;
}

let counter = 0;

/** One request through `agent`; resolves with its outcome, never rejects. */
export function send(
  agent: Agent | false,
  port: number,
  path: string | ((n: number) => string),
  options: SendOptions = {},
): Promise<Outcome> {
  const n = ++counter;
  const target = typeof path === 'function' ? path(n) : path;
  const method = options.method ?? 'GET';
  const sentAt = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const done = (outcome: Omit<Outcome, 'n' | 'method' | 'path' | 'sentAt' | 'ms' | 'reused'>) => {
      if (settled) return;
      settled = true;
      resolve({
        n,
        method,
        path: target,
        sentAt,
        ms: performance.now() - sentAt,
        reused: req.reusedSocket,
        ...outcome,
      });
    };
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path: target,
        method,
        agent,
        headers: {
          ...(options.body === undefined
            ? {}
            : {
                'content-type': 'application/json',
                'content-length': Buffer.byteLength(options.body),
              }),
          ...options.headers,
        },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () =>
          done({
            status: res.statusCode ?? 0,
            connection: res.headers.connection,
            contentType: res.headers['content-type'],
            body,
          }),
        );
        res.on('error', (error: NodeJS.ErrnoException) =>
          done({ error: error.code ?? error.message }),
        );
      },
    );
    req.setTimeout(options.timeoutMs ?? 10_000, () => {
      done({ error: 'TIMEOUT' });
      req.destroy();
    });
    req.on('error', (error: NodeJS.ErrnoException) => done({ error: error.code ?? error.message }));
    req.end(options.body);
  });
}

export interface LoadOptions {
  port: number;
  /** Concurrent loops, each sending its next request as soon as the previous one is answered. */
  concurrency: number;
  path: string | ((n: number) => string);
  request?: Omit<SendOptions, 'timeoutMs'>;
  timeoutMs?: number;
  /** A loop stops after an outcome for which this returns true (e.g. the listener refused). */
  stopOn?: (outcome: Outcome) => boolean;
  /** Pause between a loop's requests, in ms (0: back to back). */
  pauseMs?: number;
}

/** Keep-alive loops against `port` until `stop()` (or each loop's `stopOn`); `done` has every outcome. */
export function keepAliveLoad(options: LoadOptions): {
  outcomes: Outcome[];
  stop(): void;
  done: Promise<Outcome[]>;
} {
  const agent = new Agent({ keepAlive: true, maxSockets: options.concurrency });
  const outcomes: Outcome[] = [];
  let stopped = false;
  const loop = async () => {
    while (!stopped) {
      const outcome = await send(agent, options.port, options.path, {
        ...options.request,
        timeoutMs: options.timeoutMs ?? 10_000,
      });
      outcomes.push(outcome);
      if (options.stopOn?.(outcome) === true) return;
      if (options.pauseMs) await new Promise((r) => setTimeout(r, options.pauseMs));
    }
  };
  const done = Promise.all(Array.from({ length: options.concurrency }, loop)).then(() => {
    agent.destroy();
    return outcomes;
  });
  return {
    outcomes,
    stop: () => {
      stopped = true;
    },
    done,
  };
}

/** Counts of outcomes by status or error code: `{ '200': 812, ECONNREFUSED: 4 }`. */
export function tally(outcomes: readonly Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) {
    const key = o.error ?? String(o.status);
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/** The `q` quantile (0..1) of `values`, or 0 for none. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}
