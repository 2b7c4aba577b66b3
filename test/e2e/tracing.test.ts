/**
 * OpenTelemetry tracing end to end: a real `all` process (server and worker in one) exports to an
 * OTLP/HTTP receiver in this test process. One request carrying a W3C `traceparent` enqueues a
 * job; its server span, its query span, the job's span (and the job's query and outbound call)
 * share one trace id, the job's span links to the request's, the outbound call carries the trace,
 * and the log lines written inside carry `trace_id` and `span_id`. With tracing off (the
 * endpoint set but `OTEL_SDK_DISABLED=true`) the receiver gets nothing and no line has a trace id.
 *
 * The SDK is process-global, hence the child process (as `node src/main.ts` runs in production).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { tracingRequested } from '../../src/platform/observability/index.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { eventually } from '../helpers/jobs-harness.ts';
import { freePort, get, parseLogs, type LogLine } from '../helpers/process.ts';
import { redisAnswers, TEST_REDIS_URL } from '../helpers/redis.ts';

/** The traced process uses the shared Redis when one answers (CI always runs one). */
const withRedis = await redisAnswers();

const root = fileURLToPath(new URL('../..', import.meta.url));
const preload = fileURLToPath(new URL('../fixtures/tracing-app.ts', import.meta.url));

/** The OTLP JSON shape we read (`http/json`: ids are hex strings). */
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: { key: string; value: Record<string, unknown> }[];
  links?: { traceId: string; spanId: string }[];
}
interface OtlpExport {
  resourceSpans?: {
    resource?: { attributes?: { key: string; value: { stringValue?: string } }[] };
    scopeSpans?: { spans?: OtlpSpan[] }[];
  }[];
}

const SPAN_KIND = { SERVER: 2, CLIENT: 3, CONSUMER: 5 } as const;

/** An OTLP/HTTP receiver (`POST /v1/traces`, JSON) that also records calls to `/echo`. */
class Receiver {
  readonly exports: OtlpExport[] = [];
  readonly spans: OtlpSpan[] = [];
  readonly serviceNames = new Set<string>();
  readonly echoes: { tag: string; traceparent: string | undefined }[] = [];
  requests = 0;
  readonly server: Server;

  constructor() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://receiver');
        if (req.method === 'POST' && url.pathname === '/v1/traces') {
          this.requests += 1;
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpExport;
          this.exports.push(body);
          for (const rs of body.resourceSpans ?? []) {
            for (const a of rs.resource?.attributes ?? [])
              if (a.key === 'service.name' && a.value.stringValue)
                this.serviceNames.add(a.value.stringValue);
            for (const ss of rs.scopeSpans ?? []) this.spans.push(...(ss.spans ?? []));
          }
          res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
          return;
        }
        if (url.pathname === '/echo') {
          const header = req.headers.traceparent;
          this.echoes.push({
            tag: url.searchParams.get('tag') ?? '',
            traceparent: typeof header === 'string' ? header : undefined,
          });
          res.writeHead(200).end('ok');
          return;
        }
        res.writeHead(404).end();
      });
    });
  }

  async listen(): Promise<string> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return `http://127.0.0.1:${String((this.server.address() as AddressInfo).port)}`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

interface Proc {
  child: ChildProcess;
  port: number;
  output(): string;
  logs(): LogLine[];
}

async function startServer(databaseUrl: string, extra: NodeJS.ProcessEnv): Promise<Proc> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    APP_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: String(port),
    DATABASE_URL: databaseUrl,
    MIGRATE_ON_START: 'true',
    APPS: 'e2e-traced',
    LOG_LEVEL: 'info',
    JOBS_POLL_INTERVAL_MS: '500',
    ...extra,
  };
  delete env.NODE_TEST_CONTEXT;
  for (const key of Object.keys(env))
    if (key.startsWith('OTEL_') && !(key in extra)) Reflect.deleteProperty(env, key);
  const child = spawn(process.execPath, ['--import', preload, 'src/main.ts', 'all'], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => (output += c));
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (output += c));
  let exited = false;
  child.on('exit', () => (exited = true));
  await eventually(
    `server on ${String(port)} ready`,
    async () => {
      if (exited) assert.fail(`the server exited during startup\n${output}`);
      const res = await get(port, '/health/ready', 2_000).catch(() => ({ status: 0 }));
      return res.status === 200 ? true : undefined;
    },
    60_000,
  );
  return { child, port, output: () => output, logs: () => parseLogs(output) };
}

async function stop(proc: Proc | undefined): Promise<void> {
  if (!proc || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  const exit = once(proc.child, 'exit');
  proc.child.kill('SIGTERM');
  await Promise.race([exit, sleep(20_000)]);
  if (proc.child.exitCode === null) proc.child.kill('SIGKILL');
}

function post(
  port: number,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, method: 'POST', agent: false, headers },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const hex = (bytes: number) => randomBytes(bytes).toString('hex');

describe('tracing', { timeout: 180_000 }, () => {
  test('the switch: on by an endpoint or a named exporter, off by default, by OTEL_SDK_DISABLED or `none`', () => {
    assert.equal(tracingRequested({}), false);
    assert.equal(tracingRequested({ OTEL_SERVICE_NAME: 'x' }), false);
    assert.equal(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }), true);
    assert.equal(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c/v1/t' }), true);
    assert.equal(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: ' ' }), false);
    assert.equal(tracingRequested({ OTEL_TRACES_EXPORTER: 'otlp' }), true);
    assert.equal(tracingRequested({ OTEL_TRACES_EXPORTER: 'console' }), true);
    assert.equal(
      tracingRequested({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c' }),
      false,
    );
    assert.equal(
      tracingRequested({ OTEL_SDK_DISABLED: 'TRUE', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c' }),
      false,
    );
    assert.equal(
      tracingRequested({ OTEL_SDK_DISABLED: 'false', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c' }),
      true,
    );
  });

  describe('on', () => {
    let tdb: TestDatabase;
    const receiver = new Receiver();
    let proc: Proc | undefined;

    before(async () => {
      tdb = await createTestDatabase();
      const base = await receiver.listen();
      proc = await startServer(tdb.url, {
        OTEL_EXPORTER_OTLP_ENDPOINT: base,
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
        OTEL_SERVICE_NAME: 'groundwork-e2e',
        OTEL_BSP_SCHEDULE_DELAY: '100',
        OTEL_NODE_RESOURCE_DETECTORS: 'none',
        TRACING_ECHO_URL: `${base}/echo`,
        ...(withRedis ? { REDIS_URL: TEST_REDIS_URL } : {}),
      });
    });

    after(async () => {
      await stop(proc);
      await receiver.close();
      await tdb?.drop();
    });

    test('a request that enqueues a job is one trace: server, query, job, outbound call; logs carry its ids', async () => {
      assert.ok(proc);
      const traceId = hex(16);
      const clientSpanId = hex(8);
      const tag = `t-${hex(4)}`;
      const res = await post(proc.port, `/test/tracing/enqueue?tag=${tag}`, {
        traceparent: `00-${traceId}-${clientSpanId}-01`,
      });
      assert.equal(res.status, 200, res.body);
      const { jobId } = JSON.parse(res.body) as { jobId: string };

      const inTrace = () => receiver.spans.filter((s) => s.traceId === traceId);
      const job = await eventually(
        'the job span exported',
        async () => inTrace().find((s) => s.name === 'e2e.traced process'),
        30_000,
      );
      // Spans reach the receiver in export batches, which need not arrive in the order the spans
      // ended (a loaded machine had the job span before the request's insert): wait for the
      // request's side too, then check it.
      const queriesOf = (spanId: string) =>
        inTrace().filter((s) => s.name.startsWith('pg.query') && s.parentSpanId === spanId);
      await eventually(
        'the request’s spans exported',
        async () => {
          const root = inTrace().find((s) => s.kind === SPAN_KIND.SERVER);
          return root !== undefined && queriesOf(root.spanId).length >= 2;
        },
        10_000,
      ).catch(() => undefined);
      const server = inTrace().find((s) => s.kind === SPAN_KIND.SERVER);
      assert.ok(server, `a server span in the trace: ${JSON.stringify(inTrace())}`);
      assert.equal(server.name, 'POST /test/tracing/enqueue');
      assert.equal(server.parentSpanId, clientSpanId, 'child of the client’s traceparent');
      const status = server.attributes?.find((a) => a.key === 'http.response.status_code');
      assert.equal(status?.value.intValue, 200);

      // The request's query, and the enqueue (pg-boss's insert), are children of the server span.
      const requestQueries = queriesOf(server.spanId);
      assert.ok(requestQueries.length >= 2, `request queries: ${JSON.stringify(inTrace())}`);
      if (withRedis) {
        // The Redis command too, by its name only (no key, no value).
        const command = inTrace().find((s) => s.name === 'get' && s.parentSpanId === server.spanId);
        assert.ok(command, `a Redis span: ${JSON.stringify(inTrace().map((s) => s.name))}`);
        const statement = command.attributes?.find((a) =>
          ['db.statement', 'db.query.text'].includes(a.key),
        );
        assert.ok(!JSON.stringify(statement ?? '').includes(tag), 'the key is not recorded');
      }

      // The job's span: same trace, child of the request's span, and linked to it.
      assert.equal(job.kind, SPAN_KIND.CONSUMER);
      assert.equal(job.parentSpanId, server.spanId);
      assert.deepEqual(
        job.links?.map((l) => [l.traceId, l.spanId]),
        [[traceId, server.spanId]],
      );
      const jobQueries = inTrace().filter(
        (s) => s.name.startsWith('pg.query') && s.parentSpanId === job.spanId,
      );
      assert.ok(jobQueries.length >= 1, 'the job’s query is a child of its span');
      const outbound = inTrace().find(
        (s) =>
          s.kind === SPAN_KIND.CLIENT && s.parentSpanId === job.spanId && !s.name.startsWith('pg'),
      );
      assert.ok(outbound, 'the job’s fetch is a client span of the trace');
      const echo = receiver.echoes.find((e) => e.tag === tag);
      assert.match(echo?.traceparent ?? '', new RegExp(`^00-${traceId}-${outbound.spanId}-01$`));
      assert.ok(receiver.serviceNames.has('groundwork-e2e'));

      // The traceparent stored with the job is the request span's.
      const { rows } = await tdb.database.pool.query<{ traceparent: string | null }>(
        `select data->'meta'->>'traceparent' as traceparent from pgboss.job where id = $1`,
        [jobId],
      );
      assert.equal(rows[0]?.traceparent, `00-${traceId}-${server.spanId}-01`);

      // Log lines written inside the spans carry their ids.
      const lines = await eventually('the job’s log line', async () => {
        const all = proc?.logs() ?? [];
        return all.some((l) => l.msg === 'traced job ran' && l.tag === tag) ? all : undefined;
      });
      const enqueueing = lines.find((l) => l.msg === 'enqueueing a traced job' && l.tag === tag);
      assert.equal(enqueueing?.trace_id, traceId);
      assert.equal(enqueueing?.span_id, server.spanId);
      const completed = lines.find(
        (l) => l.msg === 'request completed' && l.route === '/test/tracing/enqueue',
      );
      assert.equal(completed?.trace_id, traceId);
      assert.equal(completed?.span_id, server.spanId);
      const ran = lines.find((l) => l.msg === 'traced job ran' && l.tag === tag);
      assert.equal(ran?.trace_id, traceId);
      assert.equal(ran?.span_id, job.spanId);
      // Lines outside any span (start-up) carry none.
      const started = lines.find((l) => l.msg === 'job workers started');
      assert.ok(started && started.trace_id === undefined);
      assert.ok(lines.some((l) => l.msg === 'tracing on' && l.serviceName === 'groundwork-e2e'));
    });

    test('a request without traceparent starts its own trace; probes are not traced', async () => {
      assert.ok(proc);
      const tag = `n-${hex(4)}`;
      const res = await post(proc.port, `/test/tracing/enqueue?tag=${tag}`, {});
      assert.equal(res.status, 200);
      const echo = await eventually('the job ran', async () =>
        receiver.echoes.find((e) => e.tag === tag),
      );
      const traceId = echo.traceparent?.split('-')[1];
      assert.match(traceId ?? '', /^[0-9a-f]{32}$/);
      await eventually('its spans exported', async () =>
        receiver.spans.find((s) => s.traceId === traceId && s.name === 'e2e.traced process'),
      );
      const server = receiver.spans.find(
        (s) => s.traceId === traceId && s.kind === SPAN_KIND.SERVER,
      );
      assert.ok(server && server.parentSpanId === undefined, 'a root server span');
      assert.ok(
        !receiver.spans.some((s) => s.name.includes('/health')),
        'readiness probes make no spans',
      );
    });
  });

  describe('off', () => {
    let tdb: TestDatabase;
    const receiver = new Receiver();
    let proc: Proc | undefined;

    before(async () => {
      tdb = await createTestDatabase();
      const base = await receiver.listen();
      proc = await startServer(tdb.url, {
        OTEL_EXPORTER_OTLP_ENDPOINT: base,
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
        OTEL_BSP_SCHEDULE_DELAY: '100',
        OTEL_SDK_DISABLED: 'true',
        TRACING_ECHO_URL: `${base}/echo`,
      });
    });

    after(async () => {
      await stop(proc);
      await receiver.close();
      await tdb?.drop();
    });

    test('nothing is exported, no traceparent is stored or sent, and no log line has a trace id', async () => {
      assert.ok(proc);
      const tag = `off-${hex(4)}`;
      const res = await post(proc.port, `/test/tracing/enqueue?tag=${tag}`, {
        traceparent: `00-${hex(16)}-${hex(8)}-01`,
      });
      assert.equal(res.status, 200);
      const { jobId } = JSON.parse(res.body) as { jobId: string };
      const echo = await eventually('the job ran', async () =>
        receiver.echoes.find((e) => e.tag === tag),
      );
      assert.equal(echo.traceparent, undefined, 'no traceparent on the outbound call');
      // Several export delays later: still nothing.
      await sleep(1_000);
      assert.equal(receiver.requests, 0);
      const { rows } = await tdb.database.pool.query<{ meta: Record<string, unknown> }>(
        `select data->'meta' as meta from pgboss.job where id = $1`,
        [jobId],
      );
      assert.deepEqual(Object.keys(rows[0]?.meta ?? {}).sort(), ['requestId', 'userId']);
      const lines = proc.logs();
      assert.ok(lines.some((l) => l.msg === 'traced job ran' && l.tag === tag));
      assert.ok(lines.some((l) => l.msg === 'request completed'));
      assert.deepEqual(
        lines.filter((l) => 'trace_id' in l || 'span_id' in l),
        [],
      );
      assert.ok(!lines.some((l) => l.msg === 'tracing on'));
    });
  });
});
