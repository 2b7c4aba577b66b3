import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { TEST_JWT_PRIVATE_KEY } from '../helpers/app.ts';
import {
  ConfigError,
  ConfigSchema,
  isPlaceholderSecret,
  loadConfig,
  maskEnv,
  renderConfigDocs,
  renderEnvExample,
} from '../../src/platform/config/index.ts';
import { identityModule, identitySettings } from '../../src/platform/identity/index.ts';
import { knownModules } from '../../src/app.ts';

const STRONG = 'k3J9x!qPz7Lw2Vb8Nc4Rt6Ym1Hs5Dg0Fa';
const DB = 'postgres://groundwork:pw@127.0.0.1:5432/groundwork';
/** Mail settings staging and production require. */
const MAIL = {
  SMTP_URL: 'smtp://mailer:pw@smtp.example.com:587',
  MAIL_FROM: 'Example <no-reply@example.com>',
  PUBLIC_URL: 'https://api.example.com',
};

/** The access-token signing key staging and production require. */
const IDENTITY = { AUTH_JWT_PRIVATE_KEY: TEST_JWT_PRIVATE_KEY };

function issuesOf(env: Record<string, string>): { key: string; message: string }[] {
  try {
    loadConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return [...error.issues];
  }
  assert.fail('expected a ConfigError');
}

describe('config', () => {
  test('defaults give a working development config', () => {
    const config = loadConfig({});
    assert.equal(config.env, 'development');
    assert.equal(config.server.port, 3000);
    assert.equal(config.http.bodyLimit, 1_048_576);
    assert.equal(config.http.handlerTimeoutMs, 30_000);
    assert.equal(config.lifecycle.shutdownGraceMs, 10_000);
    assert.equal(config.observability.metricsToken, null);
    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.http));
  });

  test('strings are converted to the declared types', () => {
    const config = loadConfig({
      PORT: '8080',
      BODY_LIMIT_BYTES: '2048',
      TRUST_PROXY: '2',
      APP_ENV: 'staging',
      ...MAIL,
      ...IDENTITY,
      APP_SECRET: STRONG,
    });
    assert.equal(config.server.port, 8080);
    assert.equal(config.http.bodyLimit, 2048);
    assert.equal(config.http.trustProxy, 2);
    assert.equal(config.isDeployed, true);
    assert.equal(config.isProduction, false);
  });

  test('lists are split and trimmed', () => {
    const config = loadConfig({
      CORS_ORIGINS: 'https://a.example.com, http://localhost:5173',
      ALLOWED_HOSTS: 'API.example.com,.example.org',
      TRUST_PROXY: '10.0.0.0/8, 127.0.0.1, ::1',
    });
    assert.deepEqual(config.http.corsOrigins, ['https://a.example.com', 'http://localhost:5173']);
    assert.deepEqual(config.http.allowedHosts, ['api.example.com', '.example.org']);
    assert.deepEqual(config.http.trustProxy, ['10.0.0.0/8', '127.0.0.1', '::1']);
  });

  test('missing required, wrong type, out of range and placeholder secret are all listed at once', () => {
    const issues = issuesOf({
      APP_ENV: 'production',
      ...MAIL,
      ...IDENTITY,
      PORT: 'abc',
      MAX_URL_LENGTH: '10',
      METRICS_TOKEN: 'changeme',
    });
    const keys = issues.map((i) => i.key).sort();
    assert.deepEqual(keys, [
      'APP_SECRET',
      'DATABASE_URL',
      'MAX_URL_LENGTH',
      'METRICS_TOKEN',
      'PORT',
    ]);
    const byKey = Object.fromEntries(issues.map((i) => [i.key, i.message]));
    assert.match(byKey.APP_SECRET ?? '', /required in production/);
    assert.match(byKey.DATABASE_URL ?? '', /required in production/);
    assert.match(byKey.PORT ?? '', /integer/);
    assert.match(byKey.MAX_URL_LENGTH ?? '', /256/);
    assert.match(byKey.METRICS_TOKEN ?? '', /placeholder|at least/);
  });

  test('the error message names every key', () => {
    try {
      loadConfig({ PORT: '70000', LOG_LEVEL: 'loud' });
      assert.fail('expected a ConfigError');
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /PORT/);
      assert.match(error.message, /LOG_LEVEL/);
    }
  });

  test('short and placeholder secrets refuse to start in staging and production only', () => {
    for (const appEnv of ['staging', 'production']) {
      assert.deepEqual(
        issuesOf({
          APP_ENV: appEnv,
          ...MAIL,
          ...IDENTITY,
          APP_SECRET: 'short',
          DATABASE_URL: DB,
        }).map((i) => i.key),
        ['APP_SECRET'],
      );
      assert.ok(
        issuesOf({
          APP_ENV: appEnv,
          ...MAIL,
          ...IDENTITY,
          APP_SECRET: 'changeme-changeme-changeme-changeme',
        }).some((i) => /placeholder/.test(i.message)),
      );
      assert.ok(
        issuesOf({ APP_ENV: appEnv, ...MAIL, ...IDENTITY, APP_SECRET: 'secret' }).length > 0,
      );
    }
    assert.equal(
      loadConfig({ APP_ENV: 'development', APP_SECRET: 'secret' }).secrets.appSecret,
      'secret',
    );
    assert.equal(
      loadConfig({
        APP_ENV: 'production',
        ...MAIL,
        ...IDENTITY,
        APP_SECRET: STRONG,
        DATABASE_URL: DB,
      }).isProduction,
      true,
    );
  });

  test('the development default secret is refused in production', () => {
    const devDefault = String(
      (ConfigSchema.properties.APP_SECRET as { default?: unknown }).default,
    );
    assert.ok(
      issuesOf({ APP_ENV: 'production', ...MAIL, ...IDENTITY, APP_SECRET: devDefault }).some(
        (i) => i.key === 'APP_SECRET',
      ),
    );
  });

  test('placeholder detection', () => {
    for (const value of [
      'changeme',
      'CHANGE_ME',
      'secret',
      'password',
      'replace-with-a-secret',
      'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
      'your-secret-here-please',
    ]) {
      assert.equal(isPlaceholderSecret(value), true, value);
    }
    assert.equal(isPlaceholderSecret(STRONG), false);
  });

  test('an unknown APP_ENV is refused', () => {
    assert.deepEqual(
      issuesOf({ APP_ENV: 'prod' }).map((i) => i.key),
      ['APP_ENV'],
    );
  });

  test('regression: an enum error lists the allowed values', () => {
    const issues = issuesOf({ APP_ENV: 'prod', LOG_LEVEL: 'loud', DATABASE_SSL: 'on' });
    assert.deepEqual(issues, [
      {
        key: 'APP_ENV',
        message: 'must be one of: development, test, staging, production (got "prod")',
      },
      {
        key: 'LOG_LEVEL',
        message: 'must be one of: fatal, error, warn, info, debug, trace, silent (got "loud")',
      },
      { key: 'DATABASE_SSL', message: 'must be one of: disable, require, verify-full (got "on")' },
    ]);
  });

  test('regression: development listens on 127.0.0.1 unless HOST says otherwise; elsewhere 0.0.0.0', () => {
    assert.equal(loadConfig({}).server.host, '127.0.0.1');
    assert.equal(loadConfig({ HOST: '' }).server.host, '127.0.0.1');
    assert.equal(loadConfig({ HOST: '0.0.0.0' }).server.host, '0.0.0.0');
    assert.equal(loadConfig({ APP_ENV: 'test' }).server.host, '0.0.0.0');
    const production = loadConfig({
      APP_ENV: 'production',
      ...MAIL,
      ...IDENTITY,
      APP_SECRET: STRONG,
      DATABASE_URL: DB,
    });
    assert.equal(production.server.host, '0.0.0.0');
    assert.equal(production.vars.HOST, '0.0.0.0', 'config:check shows the address in effect');
  });

  test('regression: unset, PUBLIC_URL follows HOST and PORT (and the token issuer with it)', () => {
    const dev = loadConfig({ PORT: '4000' }, { modules: [identityModule] });
    assert.equal(dev.mail.publicUrl, 'http://127.0.0.1:4000');
    assert.equal(identitySettings(dev).jwtIssuer, 'http://127.0.0.1:4000');
    assert.equal(dev.vars.PUBLIC_URL, 'http://127.0.0.1:4000');
    assert.equal(loadConfig({ HOST: '0.0.0.0' }).mail.publicUrl, 'http://localhost:3000');
    assert.equal(loadConfig({ HOST: '::', PORT: '80' }).mail.publicUrl, 'http://localhost:80');
    assert.equal(loadConfig({ HOST: '::1' }).mail.publicUrl, 'http://[::1]:3000');
    assert.equal(loadConfig({ HOST: 'dev.local' }).mail.publicUrl, 'http://dev.local:3000');
    assert.equal(
      loadConfig({ PUBLIC_URL: 'https://api.example.com/', PORT: '4000' }).mail.publicUrl,
      'https://api.example.com',
    );
    // Deployed, it must still be set explicitly.
    assert.ok(
      issuesOf({ APP_ENV: 'production', ...MAIL, ...IDENTITY, APP_SECRET: STRONG, PUBLIC_URL: '' })
        .map((i) => i.key)
        .includes('PUBLIC_URL'),
    );
  });

  test('regression: development allows local browser origins by CORS unless CORS_ORIGINS is set', () => {
    assert.equal(loadConfig({}).http.corsLocalhost, true);
    assert.deepEqual(loadConfig({}).http.corsOrigins, []);
    assert.equal(loadConfig({ CORS_ORIGINS: 'https://app.example.com' }).http.corsLocalhost, false);
    assert.equal(loadConfig({ CORS_ORIGINS: '' }).http.corsLocalhost, false);
    assert.equal(loadConfig({ APP_ENV: 'test' }).http.corsLocalhost, false);
  });

  test('regression: npm run start:prod runs with APP_ENV=production', () => {
    const pkg = JSON.parse(
      readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
    ) as {
      scripts: Record<string, string>;
    };
    const script = pkg.scripts['start:prod'] ?? '';
    assert.match(script, /node dist\/main\.js all$/);
    // What the shell npm runs it in sees (the compiled entry point swapped for a probe).
    const probe = script.replace('dist/main.js all', "-p 'process.env.APP_ENV'");
    const env = { PATH: process.env.PATH ?? '' };
    assert.equal(execFileSync('sh', ['-c', probe], { env, encoding: 'utf8' }).trim(), 'production');
  });

  test('CORS "*" is refused in production, malformed origins everywhere', () => {
    assert.ok(
      issuesOf({
        APP_ENV: 'production',
        ...MAIL,
        ...IDENTITY,
        APP_SECRET: STRONG,
        CORS_ORIGINS: '*',
      }).some((i) => i.key === 'CORS_ORIGINS'),
    );
    assert.ok(
      issuesOf({ CORS_ORIGINS: 'https://app.example.com/' }).some((i) => i.key === 'CORS_ORIGINS'),
    );
    assert.ok(issuesOf({ CORS_ORIGINS: 'ftp://x' }).some((i) => i.key === 'CORS_ORIGINS'));
    assert.deepEqual(loadConfig({ CORS_ORIGINS: '*' }).http.corsOrigins, ['*']);
  });

  test('bad TRUST_PROXY, ALLOWED_HOSTS and a TLS cert without key are refused', () => {
    const keys = issuesOf({
      TRUST_PROXY: '10.0.0.0/40',
      ALLOWED_HOSTS: 'bad host!',
      TLS_CERT_FILE: '/x.pem',
    })
      .map((i) => i.key)
      .sort();
    assert.deepEqual(keys, ['ALLOWED_HOSTS', 'TLS_KEY_FILE', 'TRUST_PROXY']);
  });

  test('.env files: .env.<APP_ENV> over .env (read in development and test only), and real variables win', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-config-'));
    try {
      writeFileSync(join(dir, '.env'), 'PORT=4001\nLOG_LEVEL=debug\n');
      writeFileSync(join(dir, '.env.test'), 'PORT=4002\n');
      writeFileSync(join(dir, '.env.production'), 'PORT=4003\n');
      assert.equal(loadConfig({ APP_ENV: 'development' }, { cwd: dir }).server.port, 4001);
      assert.equal(loadConfig({ APP_ENV: 'test' }, { cwd: dir }).server.port, 4002);
      assert.equal(loadConfig({ APP_ENV: 'test', PORT: '4004' }, { cwd: dir }).server.port, 4004);
      const prod = loadConfig(
        { APP_ENV: 'production', ...MAIL, ...IDENTITY, APP_SECRET: STRONG, DATABASE_URL: DB },
        { cwd: dir },
      );
      // Production simulation reads .env.production (seed 004 §1), never the developer's .env.
      assert.equal(prod.server.port, 4003);
      assert.equal(prod.observability.logLevel, 'info');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('mail settings must be set explicitly when deployed: their defaults do not count', () => {
    for (const appEnv of ['staging', 'production']) {
      const keys = issuesOf({ APP_ENV: appEnv, APP_SECRET: STRONG, DATABASE_URL: DB }).map(
        (i) => i.key,
      );
      for (const key of ['SMTP_URL', 'MAIL_FROM', 'PUBLIC_URL']) assert.ok(keys.includes(key), key);
    }
    const config = loadConfig({
      APP_ENV: 'production',
      APP_SECRET: STRONG,
      DATABASE_URL: DB,
      ...MAIL,
      ...IDENTITY,
    });
    assert.equal(config.mail.from, MAIL.MAIL_FROM);
    assert.equal(config.mail.publicUrl, MAIL.PUBLIC_URL);
    assert.equal(loadConfig({}).mail.from, 'Groundwork <no-reply@localhost>');
  });

  test('staging may use the embedded database; production may not', () => {
    assert.equal(
      loadConfig({ APP_ENV: 'staging', ...MAIL, ...IDENTITY, APP_SECRET: STRONG }).database.url,
      null,
    );
    assert.ok(
      issuesOf({ APP_ENV: 'production', ...MAIL, ...IDENTITY, APP_SECRET: STRONG }).some(
        (i) => i.key === 'DATABASE_URL',
      ),
    );
    assert.ok(issuesOf({ DATABASE_URL: 'mysql://x@y/z' }).some((i) => i.key === 'DATABASE_URL'));
  });

  test('migrations run at start in development, test and embedded; opt-in when deployed', () => {
    assert.equal(
      loadConfig({ APP_ENV: 'development', DATABASE_URL: DB }).database.migrateOnStart,
      true,
    );
    assert.equal(
      loadConfig({ APP_ENV: 'staging', ...MAIL, ...IDENTITY, APP_SECRET: STRONG }).database
        .migrateOnStart,
      true,
    );
    assert.equal(
      loadConfig({
        APP_ENV: 'production',
        ...MAIL,
        ...IDENTITY,
        APP_SECRET: STRONG,
        DATABASE_URL: DB,
      }).database.migrateOnStart,
      false,
    );
    assert.equal(
      loadConfig({
        APP_ENV: 'production',
        ...MAIL,
        ...IDENTITY,
        APP_SECRET: STRONG,
        DATABASE_URL: DB,
        MIGRATE_ON_START: 'true',
      }).database.migrateOnStart,
      true,
    );
  });

  test('connection URLs keep their shape with credentials masked', () => {
    const config = loadConfig({
      DATABASE_URL: DB,
      SENTRY_DSN: 'https://abc123key@o1.ingest.example.com/42',
      METRICS_TOKEN: 'weird:token-value-1234',
    });
    const masked = maskEnv(config.vars);
    assert.equal(masked.DATABASE_URL, 'postgres://groundwork:********@127.0.0.1:5432/groundwork');
    assert.equal(masked.SENTRY_DSN, 'https://********@o1.ingest.example.com/42');
    assert.equal(masked.METRICS_TOKEN, '********');
  });

  test('maskEnv hides secrets that are set', () => {
    const config = loadConfig({ METRICS_TOKEN: 'a-real-token-value-123', SENTRY_DSN: '' });
    const masked = maskEnv(config.vars);
    assert.equal(masked.METRICS_TOKEN, '********');
    assert.equal(masked.APP_SECRET, '********');
    assert.equal(masked.SENTRY_DSN, '');
    assert.equal(masked.PORT, 3000);
    assert.doesNotMatch(JSON.stringify(masked), /a-real-token-value-123/);
  });

  test('docs/configuration.md and .env.example are generated from the schemas (the platform’s and every module’s) and up to date', () => {
    const root = new URL('../../', import.meta.url);
    const modules = knownModules();
    assert.equal(
      readFileSync(new URL('docs/configuration.md', root), 'utf8'),
      renderConfigDocs(modules),
      'run npm run docs:config',
    );
    assert.equal(
      readFileSync(new URL('.env.example', root), 'utf8'),
      renderEnvExample(modules),
      'run npm run docs:config',
    );
    const keys = [
      ...Object.keys(ConfigSchema.properties),
      ...modules.flatMap((m) => Object.keys(m.config?.properties ?? {})),
    ];
    assert.ok(keys.includes('AUTH_JWT_PRIVATE_KEY'), 'identity’s settings come from its module');
    for (const key of keys) {
      assert.match(renderConfigDocs(modules), new RegExp(`\`${key}\``));
      assert.match(renderEnvExample(modules), new RegExp(`^#? ?${key}=`, 'm'));
    }
  });
});
