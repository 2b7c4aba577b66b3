// deploy/compose.yaml as shipped, without Docker: `npm run keys:generate` writes the env file, the
// compose file is read and interpolated from that file alone, and each service built from our
// Dockerfile runs its command through the image's entry point (`node dist/main.js`, compiled here
// into an /app-like directory) with the environment the file and the image give it. The other
// services are stood in for by the machine's PostgreSQL (a fresh database), the shared Redis and an
// SMTP sink; the only changes to that environment are those addresses and a PORT per process (each
// container has its own network, so all of them listen on 3000 there).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseEnv } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { SmtpSink } from '../helpers/mail.ts';
import { freePort, get, isAlive, within } from '../helpers/process.ts';
import { needsRedis, PrivateRedis } from '../helpers/redis.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const deployDir = join(root, 'deploy');

type Env = Record<string, string>;

interface Service {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string[] | string;
  environment?: Record<string, string | number | boolean | null> | string[];
  env_file?: string | (string | { path: string; required?: boolean })[];
  healthcheck?: { test?: string[]; disable?: boolean };
  deploy?: { replicas?: number };
  stop_grace_period?: string;
}

interface Run {
  child: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs `argv` with exactly `env` (no inherited variable) in `cwd`. */
function run(argv: readonly string[], env: Env, cwd: string): Run {
  const [command = '', ...args] = argv;
  const child = spawn(command === 'node' ? process.execPath : command, args, {
    cwd,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => (output += c));
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (output += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.on('exit', (code, signal) => done({ code, signal })),
  );
  return { child, output: () => output, exited };
}

async function runToEnd(argv: readonly string[], env: Env, cwd: string, ms: number, what: string) {
  const r = run(argv, env, cwd);
  try {
    const end = await within(r.exited, ms, what);
    return { ...end, output: r.output() };
  } finally {
    if (isAlive(r.child.pid as number)) r.child.kill('SIGKILL');
  }
}

/**
 * Compose's interpolation of the forms this file uses (`${VAR}`, `${VAR:-default}`,
 * `${VAR:?message}`, `$$`); any other `$` form fails the test rather than being guessed at.
 */
function interpolate(text: string, vars: Env): string {
  return text.replace(
    /\$(\$|\{([A-Z0-9_]+)(?:(:-|:\?)([^}]*))?\}|.?)/g,
    (all, _x, name, op, arg) => {
      if (all === '$$') return '$';
      assert.ok(name, `unsupported interpolation "${all}" in deploy/compose.yaml`);
      const value = vars[name as string];
      if (value !== undefined && value !== '') return value;
      if (op === ':-') return arg as string;
      assert.notEqual(op, ':?', `compose refuses to start: ${name as string}: ${arg as string}`);
      return '';
    },
  );
}

function interpolateAll<T>(value: T, vars: Env): T {
  if (typeof value === 'string') return interpolate(value, vars) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => interpolateAll(v, vars)) as T;
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, interpolateAll(v as unknown, vars)]),
    ) as T;
  return value;
}

/** The final stage's ENTRYPOINT (exec form) and ENV of the Dockerfile: what every container starts with. */
function imageOf(dockerfile: string): { entrypoint: string[]; env: Env } {
  const stages = dockerfile.split(/^FROM /m);
  const last = stages[stages.length - 1] ?? '';
  const entry = /^ENTRYPOINT (\[.*\])$/m.exec(last);
  assert.ok(entry?.[1], 'the Dockerfile has an exec-form ENTRYPOINT');
  const env: Env = {};
  for (const [, line = ''] of last.matchAll(/^ENV (.*)$/gm))
    for (const pair of line.trim().split(/\s+/)) {
      const [key = '', value = ''] = pair.split('=');
      env[key] = value;
    }
  return { entrypoint: JSON.parse(entry[1]) as string[], env };
}

/** What a container of `service` gets: the image's ENV, then env_file, then environment. */
function serviceEnv(service: Service, image: Env, vars: Env): Env {
  const env: Env = { ...image };
  const files = service.env_file === undefined ? [] : [service.env_file].flat();
  for (const file of files) {
    const path = resolve(deployDir, typeof file === 'string' ? file : file.path);
    Object.assign(env, interpolateAll(parseEnv(readFileSync(path, 'utf8')) as Env, vars));
  }
  const environment = service.environment ?? {};
  const entries = Array.isArray(environment)
    ? environment.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)] as const)
    : Object.entries(environment);
  for (const [key, value] of entries) if (value !== null) env[key] = String(value);
  return env;
}

function durationMs(value: string | undefined, fallback: number): number {
  const m = /^(\d+)(ms|s|m)$/.exec(value ?? '');
  if (!m) return fallback;
  return Number(m[1]) * { ms: 1, s: 1_000, m: 60_000 }[m[2] as 'ms' | 's' | 'm'];
}

describe(
  'deploy/compose.yaml, run without Docker',
  { timeout: 420_000, ...(await needsRedis()) },
  () => {
    const tmp = mkdtempSync(join(tmpdir(), 'gw-compose-'));
    const app = join(tmp, 'app');
    const envFile = join(tmp, 'deploy.env');
    const running: Run[] = [];
    let tdb: TestDatabase;
    let sink: SmtpSink;
    // A private Redis: the production rate limits (sign-ups per IP) must not be shared with
    // another run of the suite on the same machine.
    let redisServer: PrivateRedis;
    let services: Record<string, Service>;
    let ours: string[];
    let image: { entrypoint: string[]; env: Env };
    let vars: Env;
    let envs: Record<string, Env>;

    before(async () => {
      // The image's build stage: `npm run build` (tsc) into /app/dist, next to package.json and the
      // dependencies, run from /app (WORKDIR).
      const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
      const build = await runToEnd(
        ['node', tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', join(app, 'dist')],
        { PATH: process.env.PATH ?? '' },
        root,
        240_000,
        'npm run build',
      );
      assert.equal(build.code, 0, `the build fails:\n${build.output}`);
      cpSync(join(root, 'package.json'), join(app, 'package.json'));
      symlinkSync(join(root, 'node_modules'), join(app, 'node_modules'), 'dir');

      tdb = await createTestDatabase({ migrated: false });
      sink = new SmtpSink(await freePort());
      await sink.start();
      redisServer = await PrivateRedis.create();
      await redisServer.start();
    });

    after(async () => {
      for (const r of running) if (isAlive(r.child.pid as number)) r.child.kill('SIGKILL');
      await sink?.stop();
      await redisServer?.stop();
      await tdb?.drop();
      rmSync(tmp, { recursive: true, force: true });
    });

    test('npm run keys:generate writes the secrets to a private file, prints none of them, and never replaces the file without --force', async () => {
      const script = (
        JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
          scripts: Record<string, string>;
        }
      ).scripts['keys:generate'];
      assert.match(script ?? '', /(^|&& )node scripts\/keys-generate\.ts$/);
      const argv = ['node', 'scripts/keys-generate.ts', '--out', envFile];
      const first = await runToEnd(argv, {}, root, 30_000, 'keys:generate');
      assert.equal(first.code, 0, first.output);
      const written = readFileSync(envFile, 'utf8');
      vars = parseEnv(written) as Env;
      for (const key of [
        'AUTH_JWT_PRIVATE_KEY',
        'APP_SECRET',
        'METRICS_TOKEN',
        'POSTGRES_PASSWORD',
      ])
        assert.ok((vars[key] ?? '').length >= 32, `${key} is written`);
      for (const value of Object.values(vars))
        assert.ok(!first.output.includes(value), 'no secret reaches stdout');
      assert.equal(statSync(envFile).mode & 0o777, 0o600);

      const again = await runToEnd(argv, {}, root, 30_000, 'keys:generate again');
      assert.equal(again.code, 1);
      assert.match(again.output, /--force/);
      assert.equal(readFileSync(envFile, 'utf8'), written, 'the file is kept as it was');

      const forced = await runToEnd(
        [...argv, '--force'],
        {},
        root,
        30_000,
        'keys:generate --force',
      );
      assert.equal(forced.code, 0, forced.output);
      const replaced = parseEnv(readFileSync(envFile, 'utf8')) as Env;
      assert.notEqual(replaced.AUTH_JWT_PRIVATE_KEY, vars.AUTH_JWT_PRIVATE_KEY);
      vars = replaced;
    });

    test('the file needs nothing but the generated env file, and its app services run the image entry point', () => {
      const text = readFileSync(join(deployDir, 'compose.yaml'), 'utf8');
      const doc = parseYaml(text, { merge: true }) as { services: Record<string, Service> };
      // Interpolated from the generated file alone (docker compose --env-file deploy/.env): a
      // required variable it lacks fails here as `docker compose up` would.
      services = interpolateAll(doc.services, vars);
      ours = Object.keys(services).filter((name) => {
        const b = services[name]?.build;
        return (
          b !== undefined &&
          resolve(deployDir, typeof b === 'string' ? b : (b.context ?? '.')) === resolve(root)
        );
      });
      assert.deepEqual([...ours].sort(), ['api', 'migrate', 'worker']);
      image = imageOf(readFileSync(join(root, 'Dockerfile'), 'utf8'));
      assert.deepEqual(image.entrypoint, ['node', 'dist/main.js']);
      envs = Object.fromEntries(
        ours.map((name) => [name, serviceEnv(services[name] as Service, image.env, vars)]),
      );
      for (const name of ours)
        assert.equal(envs[name]?.APP_ENV, 'production', `${name} runs in production`);

      // The first administrator is granted with the compiled entry point, in the running worker.
      const bootstrap = /exec worker (node \S+ users grant-role) <email> admin/.exec(text);
      assert.equal(bootstrap?.[1], 'node dist/main.js users grant-role');
      for (const file of ['deploy/compose.yaml', 'Dockerfile', 'docs/deployment.md'])
        assert.ok(
          !readFileSync(join(root, file), 'utf8').includes('src/main.ts'),
          `${file} runs dist/main.js only`,
        );
    });

    /** The service's environment with the other services' addresses replaced by their stand-ins. */
    function localEnv(name: string, port: number): Env {
      const env = { ...(envs[name] as Env) };
      const db = new URL(env.DATABASE_URL ?? '');
      const postgres = serviceEnv(services[db.hostname] as Service, {}, vars);
      // The app connects as the user, password and database the postgres service is created with.
      assert.equal(db.hostname, 'postgres');
      assert.equal(decodeURIComponent(db.username), postgres.POSTGRES_USER);
      assert.equal(decodeURIComponent(db.password), postgres.POSTGRES_PASSWORD);
      assert.equal(db.pathname, `/${postgres.POSTGRES_DB ?? ''}`);
      env.DATABASE_URL = tdb.url;
      const redis = new URL(env.REDIS_URL ?? '');
      assert.ok(
        services[redis.hostname]?.image?.startsWith('redis:'),
        'REDIS_URL names the redis service',
      );
      env.REDIS_URL = redisServer.url;
      const smtp = new URL(env.SMTP_URL ?? '');
      assert.ok(
        services[smtp.hostname]?.image?.includes('mailpit'),
        'SMTP_URL names the mail sink service',
      );
      env.SMTP_URL = sink.url();
      env.PORT = String(port);
      return env;
    }

    /** The service's compose healthcheck command, run with the container's environment. */
    async function healthy(name: string, env: Env): Promise<void> {
      const check = services[name]?.healthcheck?.test ?? [];
      assert.equal(check[0], 'CMD');
      const deadline = Date.now() + 60_000;
      for (;;) {
        const r = await runToEnd(check.slice(1), env, app, 10_000, `${name} healthcheck`);
        if (r.code === 0) return;
        assert.ok(Date.now() < deadline, `${name} never became healthy:\n${r.output}`);
        await sleep(1_000);
      }
    }

    test('migrate applies the migrations and exits 0; api (each replica) and worker pass their healthchecks; mail reaches SMTP_URL; the admin command works; SIGTERM stops each with 0 within stop_grace_period', async () => {
      const migrate = await runToEnd(
        [...image.entrypoint, ...[services.migrate?.command ?? []].flat()],
        localEnv('migrate', await freePort()),
        app,
        120_000,
        'migrate',
      );
      assert.equal(migrate.code, 0, migrate.output);
      const { rows } = await tdb.database.pool.query<{ t: string | null }>(
        "select to_regclass('gw_user')::text as t",
      );
      assert.equal(rows[0]?.t, 'gw_user', 'the migrations ran');

      const started: { name: string; port: number; env: Env; run: Run }[] = [];
      for (const name of ['api', 'worker']) {
        const replicas = services[name]?.deploy?.replicas ?? 1;
        for (let i = 0; i < replicas; i++) {
          const port = await freePort();
          const env = localEnv(name, port);
          const r = run([...image.entrypoint, ...[services[name]?.command ?? []].flat()], env, app);
          running.push(r);
          started.push({ name, port, env, run: r });
        }
      }
      assert.equal(started.filter((s) => s.name === 'api').length, 2);
      for (const s of started) {
        await healthy(s.name, s.env).catch((error: Error) => {
          throw new Error(`${error.message}\n--- ${s.name} output:\n${s.run.output()}`);
        });
        const ready = await get(s.port, '/health/ready');
        const checks = (JSON.parse(ready.body) as { checks: Record<string, { status: string }> })
          .checks;
        assert.deepEqual(
          Object.fromEntries(['database', 'queue', 'redis'].map((c) => [c, checks[c]?.status])),
          { database: 'up', queue: 'up', redis: 'up' },
        );
      }

      // A sign-up on one replica: the worker sends its mail through SMTP_URL, from MAIL_FROM.
      const api = started.find((s) => s.name === 'api');
      assert.ok(api);
      const email = `compose-${randomBytes(4).toString('hex')}@example.com`;
      const res = await fetch(`http://127.0.0.1:${String(api.port)}/api/v1/auth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          email,
          username: email.split('@')[0],
          password: 'quartz-Lantern-91-meadow',
        }),
      });
      assert.equal(res.status, 202, await res.text());
      const [mail] = await sink.waitFor(1, 30_000);
      assert.deepEqual(mail?.envelope.to, [email]);
      assert.equal(mail?.envelope.from, 'no-reply@localhost');

      // The documented bootstrap: `exec worker node dist/main.js users grant-role <email> admin`.
      const worker = started.find((s) => s.name === 'worker');
      assert.ok(worker);
      const grant = await runToEnd(
        [...image.entrypoint, 'users', 'grant-role', email, 'admin'],
        worker.env,
        app,
        60_000,
        'users grant-role',
      );
      assert.equal(grant.code, 0, grant.output);
      const roles = await tdb.database.pool.query<{ name: string }>(
        'select r.name from gw_user_role ur join gw_role r on r.id = ur.role_id join gw_user u on u.id = ur.user_id where u.email = $1',
        [email],
      );
      assert.ok(
        roles.rows.some((r) => r.name === 'admin'),
        'the account holds the admin role',
      );

      await Promise.all(
        started.map(async (s) => {
          const grace = durationMs(services[s.name]?.stop_grace_period, 10_000);
          s.run.child.kill('SIGTERM');
          const end = await within(s.run.exited, grace, `${s.name} stops within stop_grace_period`);
          assert.deepEqual(end, { code: 0, signal: null }, `${s.name}:\n${s.run.output()}`);
        }),
      );
    });
  },
);
