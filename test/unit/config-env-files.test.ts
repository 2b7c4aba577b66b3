import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseEnv } from 'node:util';
import { knownModules } from '../../src/app.ts';
import {
  ConfigError,
  ConfigSchema,
  configSliceMeta,
  loadConfig,
  metaOf,
  type LoadOptions,
} from '../../src/platform/config/index.ts';
import { envFileNames, readEnvFiles } from '../../src/platform/config/env-files.ts';
import { TEST_JWT_PRIVATE_KEY } from '../helpers/app.ts';

const root = new URL('../../', import.meta.url).pathname;
const COMMITTED = ['.env.development', '.env.test', '.env.staging', '.env.production'];

/** What staging and production require beyond the files (as `.env.<env>.local` or the shell would give). */
const SECRETS = {
  APP_SECRET: 'k3J9x!qPz7Lw2Vb8Nc4Rt6Ym1Hs5Dg0Fa',
  AUTH_JWT_PRIVATE_KEY: TEST_JWT_PRIVATE_KEY,
  DATABASE_URL: 'postgres://groundwork:pw@127.0.0.1:5432/groundwork',
};

function withDir(files: Record<string, string>, fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'gw-env-files-'));
  try {
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const load = (env: Record<string, string>, options: LoadOptions) =>
  loadConfig(env, { modules: knownModules(), ...options });

describe('.env files: which are read, and the process environment wins', () => {
  test('each environment reads .env.<APP_ENV> then .env.<APP_ENV>.local; .env only in development and test', () => {
    assert.deepEqual(envFileNames('development'), [
      '.env',
      '.env.development',
      '.env.development.local',
    ]);
    assert.deepEqual(envFileNames('test'), ['.env', '.env.test', '.env.test.local']);
    assert.deepEqual(envFileNames('staging'), ['.env.staging', '.env.staging.local']);
    assert.deepEqual(envFileNames('production'), ['.env.production', '.env.production.local']);
  });

  test('the file of the selected APP_ENV is read, later files override earlier ones, and a real variable wins', () => {
    withDir(
      {
        '.env': 'PORT=4001\nLOG_LEVEL=debug\n',
        '.env.development': 'PORT=4002\n',
        '.env.development.local': 'LOG_LEVEL=warn\n',
        '.env.staging':
          'PORT=4003\nPUBLIC_URL=http://localhost:4003\nMAIL_FROM=S <s@localhost>\nSMTP_URL=smtp://127.0.0.1:1025\n',
        '.env.staging.local': `APP_SECRET=${SECRETS.APP_SECRET}\n`,
      },
      (dir) => {
        const dev = load({}, { cwd: dir });
        assert.equal(dev.server.port, 4002, '.env.development over .env');
        assert.equal(dev.observability.logLevel, 'warn', '.local over both');
        assert.equal(load({ PORT: '4999' }, { cwd: dir }).server.port, 4999, 'the process wins');
        const staging = load(
          { APP_ENV: 'staging', AUTH_JWT_PRIVATE_KEY: SECRETS.AUTH_JWT_PRIVATE_KEY },
          { cwd: dir },
        );
        assert.equal(staging.env, 'staging');
        assert.equal(staging.server.port, 4003);
        assert.equal(
          staging.secrets.appSecret,
          SECRETS.APP_SECRET,
          'secrets from .env.staging.local',
        );
        assert.equal(staging.observability.logLevel, 'info', '.env is not read in staging');
      },
    );
  });

  test('GROUNDWORK_ENV_FILE=off (the container rule) reads no file, and the Dockerfile sets it', () => {
    withDir({ '.env': 'PORT=4001\n', '.env.production': 'PORT=4003\n' }, (dir) => {
      assert.equal(load({ GROUNDWORK_ENV_FILE: 'off' }, { cwd: dir }).server.port, 3000);
      assert.deepEqual(
        readEnvFiles({ APP_ENV: 'production', GROUNDWORK_ENV_FILE: 'off' }, dir),
        {},
      );
      assert.equal(load({ GROUNDWORK_ENV_FILE: 'on' }, { cwd: dir }).server.port, 4001);
    });
    const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
    const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    assert.match(
      runtime,
      /^ENV .*\bGROUNDWORK_ENV_FILE=off\b/m,
      'the runtime image turns files off',
    );
  });

  test('a file cannot choose the environment nor turn file reading on or off', () => {
    withDir(
      {
        '.env': 'APP_ENV=production\nGROUNDWORK_ENV_FILE=off\n',
        '.env.development': 'PORT=4002\n',
      },
      (dir) => {
        assert.deepEqual(readEnvFiles({}, dir), { PORT: '4002' });
        const config = load({}, { cwd: dir });
        assert.equal(config.env, 'development');
        assert.equal(config.server.port, 4002);
      },
    );
  });

  test('an unknown APP_ENV reads no file and is reported', () => {
    withDir({ '.env': 'PORT=nope\n', '.env.qa': 'PORT=nope\n' }, (dir) => {
      assert.deepEqual(readEnvFiles({ APP_ENV: 'qa' }, dir), {});
      assert.throws(
        () => load({ APP_ENV: 'qa' }, { cwd: dir }),
        (error: unknown) =>
          error instanceof ConfigError &&
          error.issues.map((i) => i.key).join() === 'APP_ENV' &&
          /development, test, staging, production/.test(error.message),
      );
    });
  });

  test('without `cwd` (test harnesses build their configuration from an object) no file is read', () => {
    withDir({ '.env.test': 'PORT=4002\n' }, (dir) => {
      assert.equal(load({ APP_ENV: 'test' }, {}).server.port, 3000);
      assert.equal(load({ APP_ENV: 'test' }, { cwd: dir }).server.port, 4002);
    });
  });
});

describe('the committed .env.<APP_ENV> files', () => {
  const parsed = Object.fromEntries(
    COMMITTED.map((name) => [name, parseEnv(readFileSync(join(root, name), 'utf8'))]),
  );

  test('every key is a real setting of the server (the platform’s or a module’s)', () => {
    const known = new Set([
      ...Object.keys(ConfigSchema.properties),
      ...knownModules().flatMap((m) => Object.keys(m.config?.properties ?? {})),
    ]);
    for (const [name, vars] of Object.entries(parsed)) {
      for (const key of Object.keys(vars))
        assert.ok(known.has(key), `${name}: ${key} is no setting`);
      assert.ok(!('APP_ENV' in vars) && !('GROUNDWORK_ENV_FILE' in vars), `${name} sets no switch`);
    }
  });

  test('no secret is committed: every secret setting is absent (placeholders stay in comments)', () => {
    const modules = knownModules();
    const secret = (key: string) =>
      metaOf(key).secret === true ||
      modules.some((m) => key in (m.config?.properties ?? {}) && configSliceMeta(m, key).secret);
    for (const [name, vars] of Object.entries(parsed))
      for (const [key, value = ''] of Object.entries(vars))
        // A URL to a local service with no credentials is not a secret (SMTP_URL, REDIS_URL).
        if (secret(key))
          assert.doesNotMatch(value, /\/\/[^/@]*:[^/@]*@/, `${name}: ${key} carries a credential`);
    for (const [name, vars] of Object.entries(parsed))
      for (const key of ['APP_SECRET', 'AUTH_JWT_PRIVATE_KEY', 'METRICS_TOKEN', 'DATABASE_URL'])
        assert.ok(!(key in vars), `${name} sets ${key}`);
  });

  test('.env.test changes nothing a test sees (every value is what a process gets without it)', () => {
    const env = { APP_ENV: 'test' };
    const withFile = load({ ...parsed['.env.test'], ...env }, {});
    const without = load(env, {});
    assert.deepEqual(withFile.vars, without.vars);
    assert.deepEqual(withFile.moduleVars, without.moduleVars);
  });

  test('each file makes a valid configuration of its environment with the secrets added', () => {
    for (const appEnv of ['development', 'test', 'staging', 'production']) {
      const vars = parsed[`.env.${appEnv}`] ?? {};
      const deployed = appEnv === 'staging' || appEnv === 'production';
      const config = load({ ...vars, APP_ENV: appEnv, ...(deployed ? SECRETS : {}) }, {});
      assert.equal(config.env, appEnv);
      if (deployed) {
        assert.equal(config.database.migrateOnStart, false, `${appEnv}: migrate is a release step`);
        assert.notEqual(config.redis.url, null, `${appEnv}: simulates several processes on Redis`);
      }
    }
  });
});
