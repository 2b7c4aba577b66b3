import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import {
  createLogDestination,
  createLogger,
  flushLogger,
} from '../../src/platform/observability/index.ts';
import {
  isoTime,
  loggableUrl,
  RequestLogger,
  WRITE_DELAY_MS,
  requestChildLogger,
  writeRequestLine,
  type RequestLine,
} from '../../src/platform/observability/logger.ts';

test("isoTime writes the same text as pino's isoTime", (t) => {
  const instants = [
    Date.UTC(2026, 0, 2, 3, 4, 5, 0),
    Date.UTC(2026, 0, 2, 3, 4, 5, 7),
    Date.UTC(2026, 0, 2, 3, 4, 5, 78),
    Date.UTC(2026, 0, 2, 3, 4, 5, 678),
    Date.UTC(2026, 0, 2, 3, 4, 6, 1),
    Date.UTC(2026, 11, 31, 23, 59, 59, 999),
    Date.UTC(2027, 0, 1, 0, 0, 0, 0),
  ];
  for (const now of instants) {
    t.mock.method(Date, 'now', () => now);
    assert.equal(isoTime(), pino.stdTimeFunctions.isoTime());
    t.mock.restoreAll();
  }
});

test('the batched destination writes every line, in order, and flushLogger waits for them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-log-'));
  try {
    const file = join(dir, 'out.log');
    const logger = createLogger({ level: 'info', destination: createLogDestination(file) });
    for (let i = 0; i < 500; i++) logger.info({ i }, 'line');
    await flushLogger(logger);
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    assert.equal(lines.length, 500);
    assert.deepEqual(
      lines.map((l) => (JSON.parse(l) as { i: number }).i),
      Array.from({ length: 500 }, (_, i) => i),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('lines reach the destination on their own soon after they are logged', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-log-'));
  try {
    const file = join(dir, 'out.log');
    const logger = createLogger({ level: 'info', destination: createLogDestination(file) });
    logger.info('first');
    logger.warn('second');
    const deadline = Date.now() + 5 * WRITE_DELAY_MS + 1_000;
    let text = '';
    while (Date.now() < deadline && text.split('\n').length < 3) {
      await new Promise((resolve) => setTimeout(resolve, WRITE_DELAY_MS));
      text = existsSync(file) ? readFileSync(file, 'utf8') : '';
    }
    assert.deepEqual(
      text
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { msg: string }).msg),
      ['first', 'second'],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the destination keeps every byte and the order across full slabs, long lines and non-ASCII text', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-log-'));
  try {
    const file = join(dir, 'out.log');
    const logger = createLogger({ level: 'info', destination: createLogDestination(file) });
    // One turn: about 400 KB of lines (several 64 KB slabs), multi-byte characters, and a line
    // longer than a slab in the middle.
    const texts = Array.from({ length: 3000 }, (_, i) =>
      i === 1500 ? 'x'.repeat(200_000) : `ligne ${String(i)} é ü 😀 ${'-'.repeat(i % 90)}`,
    );
    texts.forEach((text, i) => logger.info({ i, text }, 'line'));
    await flushLogger(logger);
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    assert.equal(lines.length, texts.length);
    lines.forEach((l, i) => {
      const parsed = JSON.parse(l) as { i: number; text: string };
      assert.equal(parsed.i, i);
      assert.equal(parsed.text, texts[i]);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function captureLogger(level = 'info') {
  const lines: string[] = [];
  const destination = { write: (line: string) => void lines.push(line) };
  const logger = createLogger({ level, destination, base: { service: 'groundwork' } });
  return { logger, lines };
}

test("the request line's fast path writes the line pino would write, byte for byte but the time", () => {
  const { logger, lines } = captureLogger();
  const child = logger.child({}).child({ requestId: 'req-"1\u2028' });
  const line: RequestLine = {
    method: 'GET',
    route: '/api/v1/things/:id',
    url: '/api/v1/things/1?q="quoted"\n&x=\u00e9',
    statusCode: 200,
    durationMs: 1.25,
    ip: '::ffff:127.0.0.1',
    userId: 'u-1',
  };
  for (const level of ['info', 'warn', 'error'] as const) {
    writeRequestLine(child, level, line);
    child[level](line, 'request completed');
  }
  for (const line of [{ userId: undefined }]) {
    writeRequestLine(child, 'info', { ...lineOf(), ...line });
    child.info({ ...lineOf(), ...line }, 'request completed');
  }
  assert.equal(lines.length, 8);
  const withoutTime = (l: string) => l.replace(/,"time":"[^"]+"/, '');
  for (let i = 0; i < lines.length; i += 2) {
    assert.equal(withoutTime(lines[i] as string), withoutTime(lines[i + 1] as string));
    assert.match(lines[i] as string, /^\{"level":"\w+","time":"\d{4}-\d\d-\d\dT[\d:.]+Z","pid":/);
  }
  function lineOf(): RequestLine {
    return { ...line };
  }
});

test("a request's logger makes its pino child only when used, and its lines are the child's", () => {
  const { logger, lines } = captureLogger('debug');
  const bindings = { requestId: 'req-"2\u2028' };
  const make = () =>
    requestChildLogger.call(undefined as never, logger, bindings, {}, undefined as never);
  const lazy = make();
  assert.ok(lazy instanceof RequestLogger);
  const line: RequestLine = {
    method: 'POST',
    route: '/api/v1/things',
    url: '/api/v1/things',
    statusCode: 201,
    durationMs: 3,
    ip: '10.0.0.1',
    userId: undefined,
  };
  // The completion line without a child: the same text as the real child's line.
  writeRequestLine(lazy, 'info', line);
  assert.equal(lazy.made, undefined);
  const real = logger.child(bindings);
  real.info(line, 'request completed');
  // Any other use makes the child; the completion line is then written from it.
  lazy.debug({ step: 1 }, 'working');
  assert.ok(lazy.made !== undefined);
  writeRequestLine(lazy, 'info', line);
  lazy.child({ job: 'j' }).warn('nested');
  lazy.level = 'warn';
  lazy.info('not written: below the level');
  assert.equal(make().level, 'debug');
  const withoutTime = (l: string) => l.replace(/,"time":"[^"]+"/, '');
  assert.equal(lines.length, 5);
  assert.equal(withoutTime(lines[0] as string), withoutTime(lines[1] as string));
  assert.equal(withoutTime(lines[3] as string), withoutTime(lines[1] as string));
  for (const l of lines)
    assert.equal((JSON.parse(l) as { requestId: string }).requestId, bindings.requestId);
  assert.equal((JSON.parse(lines[2] as string) as { step: number }).step, 1);
  assert.equal((JSON.parse(lines[4] as string) as { job: string }).job, 'j');
});

test('the request line honours the level and masks credential-like query values', () => {
  const { logger, lines } = captureLogger('warn');
  const line: RequestLine = {
    method: 'GET',
    route: '/cb',
    url: '/cb?code=SECRETCODE&state=S1&page=2&token=T&Password=p',
    statusCode: 200,
    durationMs: 1,
    ip: '127.0.0.1',
    userId: undefined,
  };
  writeRequestLine(logger, 'info', line);
  assert.equal(lines.length, 0, 'info is below warn');
  writeRequestLine(logger, 'warn', { ...line, url: loggableUrl(line.url) });
  const parsed = JSON.parse(lines[0] as string) as { url: string };
  assert.equal(
    parsed.url,
    '/cb?code=[REDACTED]&state=[REDACTED]&page=2&token=[REDACTED]&Password=[REDACTED]',
  );
  assert.equal(loggableUrl(`/${'a'.repeat(300)}`).length, 201);
  // A token where none belongs (a WebSocket client putting its JWT in the URL) is masked too.
  assert.equal(
    loggableUrl('/ws?jwt=eyJhbGciOi.eyJzdWIi.sig&Bearer=abc&authorization=x&id_token=y&v=1'),
    '/ws?jwt=[REDACTED]&Bearer=[REDACTED]&authorization=[REDACTED]&id_token=[REDACTED]&v=1',
  );
});

test('a logger not made by createLogger takes pino’s own path', () => {
  const lines: string[] = [];
  const other = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
  writeRequestLine(other, 'info', {
    method: 'GET',
    route: '/x',
    url: '/x',
    statusCode: 204,
    durationMs: 0.5,
    ip: '127.0.0.1',
    userId: undefined,
  });
  const parsed = JSON.parse(lines[0] as string) as { level: number; msg: string; route: string };
  assert.equal(parsed.level, 30, "pino's numeric level: its own formatting");
  assert.equal(parsed.msg, 'request completed');
  assert.equal(parsed.route, '/x');
});
