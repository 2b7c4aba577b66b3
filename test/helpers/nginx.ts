// Debian's nginx in front of real server processes, for test/e2e/nginx.test.ts and
// test/chaos/cluster.chaos.ts: renders deploy/nginx/ (the `# render:` marks) into a temporary
// prefix, generates a self-signed certificate with the openssl CLI, runs nginx as the current
// user on loopback ports, and talks HTTPS to it from a chosen loopback address.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { Agent, request as httpsRequest } from 'node:https';
import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { freePort, isAlive } from './process.ts';
import type { Outcome } from './load.ts';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
export const NGINX_DIR = join(root, 'deploy/nginx');
export const NGINX = process.env.NGINX_PATH ?? '/usr/sbin/nginx';
/** The host name the certificate is made for and every request names. */
export const HOST = 'groundwork.test';
/** The address test clients connect from: not nginx's own 127.0.0.1, so the two can be told apart. */
export const CLIENT_IP = '127.0.0.7';

/**
 * `{ skip }` for a suite that needs nginx and openssl: skipped with the reason when either is
 * missing, except where REQUIRE_NGINX=1 (CI installs nginx and sets it, so a failed install fails).
 */
export function needsNginx(): { skip?: string } {
  if (process.env.REQUIRE_NGINX === '1') return {};
  if (!existsSync(NGINX)) return { skip: `no nginx at ${NGINX}: apt-get install -y nginx` };
  if (!existsSync('/usr/bin/openssl'))
    return { skip: 'no openssl CLI: apt-get install -y openssl' };
  return {};
}

/**
 * Renders a config marked with `# render:NAME`: the first argument of each marked directive is
 * replaced by `values[NAME]`; `null` drops the line; an array repeats the line once per value
 * (the upstream's `server` lines: every further line of that mark is dropped). Marks absent from
 * `values` keep the committed value. A name in `values` that marks no line fails, so the test
 * and the file cannot drift apart. Hand-written: envsubst cannot keep the file valid nginx (a
 * `${VAR}` there is an unknown variable) and no maintained nginx templating package fits this.
 */
export function renderConfig(
  text: string,
  values: Readonly<Record<string, string | readonly string[] | null>>,
): string {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const mark = /#\s*render:([A-Z0-9_]+)\s*$/.exec(line);
    const name = mark?.[1];
    if (name === undefined || !(name in values)) {
      out.push(line);
      continue;
    }
    const value = values[name];
    const first = !seen.has(name);
    seen.add(name);
    if (value === null || value === undefined) continue;
    const directive = /^(\s*)(\S+)\s+(\S+?)(;|\s)/.exec(line);
    assert.ok(directive, `render:${name} marks no directive: ${line}`);
    const [, indent = '', key = '', , after = ''] = directive;
    const rest = line.slice(directive[0].length - after.length).replace(/\s*#\s*render:.*$/, '');
    if (typeof value === 'string') out.push(`${indent}${key} ${value}${rest}`);
    else if (first) for (const v of value) out.push(`${indent}${key} ${v}${rest}`);
  }
  for (const name of Object.keys(values))
    assert.ok(seen.has(name), `no line of the config is marked render:${name}`);
  return out.join('\n');
}

export interface Certificate {
  certFile: string;
  keyFile: string;
  pem: string;
}

/** A self-signed P-256 certificate for HOST and 127.0.0.1, valid for a day (openssl CLI). */
export async function selfSignedCertificate(dir: string): Promise<Certificate> {
  const certFile = join(dir, 'fullchain.pem');
  const keyFile = join(dir, 'privkey.pem');
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    '1',
    '-subj',
    `/CN=${HOST}`,
    '-addext',
    `subjectAltName=DNS:${HOST},IP:127.0.0.1`,
  ]);
  return { certFile, keyFile, pem: readFileSync(certFile, 'utf8') };
}

/**
 * The machine's /etc/nginx/nginx.conf (Debian's `http {}` defaults, `gzip on` and
 * `ssl_protocols` among them, must accept our file) made runnable in `dir` by anyone: logs, pid
 * and temporary files there, the site included from `dir/conf.d`, no default site (port 80).
 * A minimal equivalent where the machine has none.
 */
function mainConfig(dir: string): string {
  const debian = existsSync('/etc/nginx/nginx.conf')
    ? readFileSync('/etc/nginx/nginx.conf', 'utf8')
    : 'user www-data;\nworker_processes auto;\nerror_log /var/log/nginx/error.log;\nevents {\n}\nhttp {\n\tinclude /etc/nginx/mime.types;\n\tgzip on;\n\tinclude /etc/nginx/conf.d/*.conf;\n}\n';
  const asRoot = process.getuid?.() === 0;
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((k) => `\t${k}_temp_path ${join(dir, 'tmp', k)};`)
    .join('\n');
  return (
    debian
      // Workers as an unprivileged user when started by root (Debian's www-data), else as us.
      .replace(/^\s*user\s[^;]*;/m, asRoot ? 'user www-data;' : '')
      .replace(/^\s*worker_processes\s[^;]*;/m, 'worker_processes 1;')
      .replace(/^\s*pid\s[^;]*;/m, '') // given with -g
      .replace(/^\s*error_log\s[^;]*;/m, `error_log ${join(dir, 'error.log')} info;`)
      .replace(/^\s*access_log\s[^;]*;/m, `\taccess_log ${join(dir, 'access.log')};`)
      .replace(/^\s*include\s+\/etc\/nginx\/sites-enabled\/[^;]*;/m, '')
      .replace(/^\s*include\s+\/etc\/nginx\/conf\.d\/[^;]*;/m, `${temp}\n\tinclude conf.d/*.conf;`)
  );
}

export interface NginxOptions {
  /** `host:port` of each upstream server. */
  upstreams: readonly string[];
  /** Other `# render:` values (e.g. `API_READ_TIMEOUT: '2s'`). */
  render?: Readonly<Record<string, string | readonly string[] | null>>;
  /** Files of a frontend build to serve, by path under the static root. */
  staticFiles?: Readonly<Record<string, string>>;
}

export interface RunningNginx {
  dir: string;
  httpPort: number;
  httpsPort: number;
  cert: Certificate;
  /** The rendered site file. */
  site: string;
  /** Output of `nginx -t`. */
  testOutput: string;
  child: ChildProcess;
  errorLog(): string;
  accessLog(): Record<string, unknown>[];
}

/** `nginx -t` with the prefix and pid of `dir`; resolves with its output, rejects on failure. */
export async function nginxTest(dir: string): Promise<string> {
  const { stdout, stderr } = await run(NGINX, [
    '-t',
    '-p',
    dir,
    '-c',
    join(dir, 'nginx.conf'),
    '-g',
    `pid ${join(dir, 'nginx.pid')};`,
  ]);
  return stdout + stderr;
}

/**
 * Lays out a prefix in a temporary directory: nginx.conf (see `mainConfig`), the snippets, the
 * site rendered with loopback listeners, the certificate, the static root and log paths.
 */
export async function prepareNginx(
  t: TestContext,
  options: NginxOptions,
): Promise<Omit<RunningNginx, 'child' | 'testOutput' | 'errorLog' | 'accessLog'>> {
  const dir = mkdtempSync(join(tmpdir(), 'gw-nginx-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // Workers (www-data when we are root) read the static files and write temporary files here.
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'conf.d'));
  mkdirSync(join(dir, 'snippets'));
  mkdirSync(join(dir, 'tmp'));
  mkdirSync(join(dir, 'static'));
  mkdirSync(join(dir, 'acme'));
  for (const file of readdirSync(join(NGINX_DIR, 'snippets')))
    copyFileSync(join(NGINX_DIR, 'snippets', file), join(dir, 'snippets', file));
  for (const [path, content] of Object.entries(options.staticFiles ?? {})) {
    mkdirSync(join(dir, 'static', path, '..'), { recursive: true });
    writeFileSync(join(dir, 'static', path), content);
  }
  const cert = await selfSignedCertificate(dir);
  const httpPort = await freePort();
  const httpsPort = await freePort();
  const site = renderConfig(readFileSync(join(NGINX_DIR, 'groundwork.conf'), 'utf8'), {
    HTTP_LISTEN: `127.0.0.1:${String(httpPort)}`,
    HTTP_LISTEN_V6: null,
    HTTPS_LISTEN: `127.0.0.1:${String(httpsPort)}`,
    HTTPS_LISTEN_V6: null,
    TLS_CERT: cert.certFile,
    TLS_KEY: cert.keyFile,
    UPSTREAM: options.upstreams,
    ACCESS_LOG: join(dir, 'groundwork.access.log'),
    STATIC_ROOT: join(dir, 'static'),
    ACME_ROOT: join(dir, 'acme'),
    ...options.render,
  });
  writeFileSync(join(dir, 'conf.d', 'groundwork.conf'), site);
  writeFileSync(join(dir, 'nginx.conf'), mainConfig(dir));
  return { dir, httpPort, httpsPort, cert, site };
}

/** Renders, checks with `nginx -t`, starts nginx in the foreground and waits for its ports. */
export async function startNginx(t: TestContext, options: NginxOptions): Promise<RunningNginx> {
  const prepared = await prepareNginx(t, options);
  const { dir } = prepared;
  const testOutput = await nginxTest(dir);
  const child = spawn(
    NGINX,
    ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', `daemon off; pid ${join(dir, 'nginx.pid')};`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = once(child, 'exit');
  t.after(async () => {
    if (child.pid !== undefined && isAlive(child.pid)) {
      child.kill('SIGTERM'); // fast shutdown
      await exited;
    }
  });
  const errorLog = () =>
    stderr +
    (existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : '');
  for (const port of [prepared.httpPort, prepared.httpsPort]) {
    const deadline = Date.now() + 10_000;
    while (!(await accepts(port))) {
      if (child.exitCode !== null) assert.fail(`nginx exited: ${errorLog()}`);
      if (Date.now() > deadline)
        assert.fail(`nginx not listening on ${String(port)}: ${errorLog()}`);
      await sleep(50);
    }
  }
  return {
    ...prepared,
    testOutput,
    child,
    errorLog,
    accessLog: () =>
      readFileSync(join(dir, 'groundwork.access.log'), 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.on('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Raw header lines, to count repeated headers. */
  rawHeaders: string[];
  body: string;
  json<T = Record<string, unknown>>(): T;
}

export interface ClientOptions {
  method?: string;
  headers?: OutgoingHttpHeaders;
  body?: string | Buffer;
  /** A keep-alive agent (HTTPS only); none: a fresh connection. */
  agent?: Agent;
  timeoutMs?: number;
  /** Plain HTTP (the redirect) instead of HTTPS. */
  plain?: boolean;
  /** Connect from this loopback address instead of CLIENT_IP. */
  localAddress?: string;
}

/** An HTTPS agent trusting the test certificate, connecting from CLIENT_IP. */
export function clientAgent(nginx: Pick<RunningNginx, 'cert'>, maxSockets = 8): Agent {
  return new Agent({
    keepAlive: true,
    maxSockets,
    ca: nginx.cert.pem,
    servername: HOST,
    localAddress: CLIENT_IP,
  });
}

/** One request to nginx (HTTPS unless `plain`), from CLIENT_IP, naming HOST. */
export function call(
  nginx: Pick<RunningNginx, 'cert' | 'httpPort' | 'httpsPort'>,
  path: string,
  options: ClientOptions = {},
): Promise<Reply> {
  const body = options.body;
  const headers: OutgoingHttpHeaders = {
    host: HOST,
    ...(body === undefined
      ? {}
      : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }),
    ...options.headers,
  };
  const common = {
    host: '127.0.0.1',
    path,
    method: options.method ?? 'GET',
    headers,
    localAddress: options.localAddress ?? CLIENT_IP,
    timeout: options.timeoutMs ?? 15_000,
  };
  return new Promise((resolve, reject) => {
    const onResponse = (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body: text,
          json: <T>() => JSON.parse(text) as T,
        });
      });
      res.on('error', reject);
    };
    const req = options.plain
      ? httpRequest({ ...common, port: nginx.httpPort, agent: false }, onResponse)
      : httpsRequest(
          {
            ...common,
            port: nginx.httpsPort,
            ca: nginx.cert.pem,
            servername: HOST,
            agent: options.agent ?? false,
          },
          onResponse,
        );
    req.on('timeout', () => req.destroy(new Error(`${path}: no answer in time`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Every value of header `name` in raw header lines (case-insensitive). */
export function headerValues(reply: Pick<Reply, 'rawHeaders'>, name: string): string[] {
  const values: string[] = [];
  for (let i = 0; i < reply.rawHeaders.length; i += 2)
    if (reply.rawHeaders[i]?.toLowerCase() === name.toLowerCase())
      values.push(reply.rawHeaders[i + 1] ?? '');
  return values;
}

/**
 * Keep-alive HTTPS loops through nginx until `stop()`: every request's outcome recorded (the
 * shape of test/helpers/load.ts's, whose loops speak plain HTTP only).
 */
export function httpsLoad(
  nginx: Pick<RunningNginx, 'cert' | 'httpPort' | 'httpsPort'>,
  options: { concurrency: number; path: (n: number) => string; method?: string; pauseMs?: number },
): { outcomes: Outcome[]; stop(): void; done: Promise<Outcome[]> } {
  const agent = clientAgent(nginx, options.concurrency);
  const outcomes: Outcome[] = [];
  let stopped = false;
  let n = 0;
  const loop = async () => {
    while (!stopped) {
      const k = ++n;
      const path = options.path(k);
      const sentAt = performance.now();
      const method = options.method ?? 'GET';
      try {
        const reply = await call(nginx, path, { agent, method, timeoutMs: 15_000 });
        outcomes.push({
          n: k,
          method,
          path,
          status: reply.status,
          body: reply.body,
          reused: false,
          sentAt,
          ms: performance.now() - sentAt,
        });
      } catch (error) {
        outcomes.push({
          n: k,
          method,
          path,
          error: (error as NodeJS.ErrnoException).code ?? String(error),
          reused: false,
          sentAt,
          ms: performance.now() - sentAt,
        });
      }
      if (options.pauseMs) await sleep(options.pauseMs);
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

/** One directive of an nginx config: its name, arguments, and block when it has one. */
export interface Directive {
  name: string;
  args: string[];
  block?: Directive[];
}

/**
 * Parses nginx config text into directives (comments dropped, quotes removed). Hand-written: no
 * maintained nginx-config parser is among the installed packages, and the tests only read a few
 * values (crossplane, the reference parser, is Python).
 */
export function parseNginx(text: string): Directive[] {
  const tokens: string[] = [];
  const pattern = /#[^\n]*|'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"|([{};])|([^\s{};'"#]+)/g;
  for (const m of text.matchAll(pattern)) {
    if (m[0].startsWith('#')) continue;
    tokens.push(m[1] ?? m[2] ?? m[3] ?? m[4] ?? '');
  }
  let i = 0;
  const parse = (): Directive[] => {
    const out: Directive[] = [];
    while (i < tokens.length && tokens[i] !== '}') {
      const name = tokens[i++] as string;
      const args: string[] = [];
      while (i < tokens.length && tokens[i] !== ';' && tokens[i] !== '{')
        args.push(tokens[i++] as string);
      if (tokens[i] === '{') {
        i++;
        const block = parse();
        assert.equal(tokens[i++], '}', `unclosed block ${name}`);
        out.push({ name, args, block });
      } else {
        assert.equal(tokens[i++], ';', `directive ${name} without ;`);
        out.push({ name, args });
      }
    }
    return out;
  };
  const top = parse();
  assert.equal(i, tokens.length, 'unbalanced }');
  return top;
}

/** The arguments of the single directive `name` directly in `block`; fails when not exactly one. */
export function only(block: readonly Directive[] | undefined, name: string): string[] {
  const found = (block ?? []).filter((d) => d.name === name);
  assert.equal(found.length, 1, `one ${name} expected, found ${String(found.length)}`);
  return (found[0] as Directive).args;
}

/** nginx sizes (`1m`, `16k`, `1025m`) in bytes. */
export function nginxBytes(size: string): number {
  const m = /^(\d+)([kKmMgG]?)$/.exec(size);
  assert.ok(m, `not a size: ${size}`);
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m[2] ?? '').toLowerCase()] ?? 1;
  return Number(m[1]) * unit;
}

/** nginx times (`35s`, `1m`, `330s`, `1d`) in milliseconds. */
export function nginxMs(time: string): number {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(time);
  assert.ok(m, `not a time: ${time}`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] ?? 's'] ?? 1000;
  return Number(m[1]) * unit;
}

export interface ProxySocket {
  ws: WebSocket;
  frames: Record<string, unknown>[];
  closed: Promise<{ code: number; reason: string }>;
  /** The first frame (after the first `from`) of this type, waiting up to `timeoutMs`. */
  next(
    match: string | ((frame: Record<string, unknown>) => boolean),
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  send(frame: Record<string, unknown>): void;
}

/** A JSON-subprotocol WebSocket to /ws through nginx (wss, from CLIENT_IP). */
export async function openSocket(
  nginx: Pick<RunningNginx, 'cert' | 'httpsPort'>,
): Promise<ProxySocket> {
  const ws = new WebSocket(
    `wss://127.0.0.1:${String(nginx.httpsPort)}/ws`,
    ['groundwork.v1.json'],
    // The certificate names 127.0.0.1 too, which is what the client verifies here.
    { ca: nginx.cert.pem, localAddress: CLIENT_IP, headers: { host: HOST } },
  );
  const frames: Record<string, unknown>[] = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  ws.on('message', (data: Buffer) =>
    frames.push(JSON.parse(data.toString()) as Record<string, unknown>),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return {
    ws,
    frames,
    closed,
    send: (frame) => ws.send(JSON.stringify(frame)),
    async next(match, timeoutMs = 10_000) {
      const test =
        typeof match === 'string' ? (f: Record<string, unknown>) => f.type === match : match;
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = frames.find(test);
        if (found) return found;
        if (Date.now() > deadline || ws.readyState === WebSocket.CLOSED)
          assert.fail(
            `no matching frame within ${String(timeoutMs)} ms: ${JSON.stringify(frames)}`,
          );
        await sleep(25);
      }
    },
  };
}
