import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { FastifyRequest } from 'fastify';
import { ConfigError } from '../../src/platform/config/index.ts';
import { HttpError } from '../../src/platform/http/index.ts';
import {
  PASSWORD_HISTORY,
  maskEmail,
  purgeDeletedAccountsJob,
  requireRecentAuthentication,
  identitySettings,
} from '../../src/platform/identity/index.ts';
import { loadAppConfig } from '../../src/app.ts';

const signedIn = (authenticatedAt: Date) =>
  ({
    userId: '018f0000-0000-7000-8000-000000000001',
    sessionId: '018f0000-0000-7000-8000-000000000002',
    authenticatedAt,
    amr: ['pwd'],
  }) as unknown as FastifyRequest;

describe('identity accounts: settings and pure rules', () => {
  test('defaults are pinned in seconds (regression: seconds versus minutes): reset 1 h, step-up 10 min, retention 30 days', () => {
    const id = identitySettings(loadAppConfig({ APP_ENV: 'test' }));
    assert.deepEqual(
      [id.resetTokenTtlS, id.stepUpMaxAgeS, id.accountRetentionS],
      [3_600, 600, 2_592_000],
    );
    const custom = identitySettings(
      loadAppConfig({
        APP_ENV: 'test',
        AUTH_RESET_TOKEN_TTL: '15m',
        AUTH_STEP_UP_MAX_AGE: '5m',
        AUTH_ACCOUNT_RETENTION: '7d',
      }),
    );
    assert.deepEqual(
      [custom.resetTokenTtlS, custom.stepUpMaxAgeS, custom.accountRetentionS],
      [900, 300, 604_800],
    );
    for (const key of ['AUTH_RESET_TOKEN_TTL', 'AUTH_STEP_UP_MAX_AGE', 'AUTH_ACCOUNT_RETENTION'])
      assert.throws(
        () => loadAppConfig({ APP_ENV: 'test', [key]: '10' }),
        (e: unknown) => e instanceof ConfigError && e.issues.some((i) => i.key === key),
        `${key} without a unit`,
      );
  });

  test('the history covers the current password and the four before it', () => {
    assert.equal(PASSWORD_HISTORY, 5);
  });

  test('requireRecentAuthentication: passes within the window, 403 REAUTHENTICATION_REQUIRED past it', () => {
    requireRecentAuthentication(signedIn(new Date(Date.now() - 599_000)), 600);
    assert.throws(
      () => requireRecentAuthentication(signedIn(new Date(Date.now() - 601_000)), 600),
      (e: unknown) =>
        e instanceof HttpError &&
        e.status === 403 &&
        e.code === 'REAUTHENTICATION_REQUIRED' &&
        e.extensions.maxAge === 600,
    );
    // Not signed in at all is a 401, not a step-up.
    assert.throws(
      () => requireRecentAuthentication({} as FastifyRequest, 600),
      (e: unknown) => e instanceof HttpError && e.status === 401,
    );
  });

  test('maskEmail keeps the first character and the domain only', () => {
    assert.equal(maskEmail('new.home@example.com'), 'n***@example.com');
    assert.equal(maskEmail('x@example.com'), 'x***@example.com');
  });

  test('the purge job runs daily under its own name', () => {
    const job = purgeDeletedAccountsJob(86_400);
    assert.equal(job.name, 'identity.account-purge');
    assert.match(job.options.cron?.expression ?? '', /^\d+ \d+ \* \* \*$/);
  });
});
