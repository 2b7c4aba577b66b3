import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadConfig } from '../../src/platform/config/index.ts';
import { TEST_JWT_PRIVATE_KEY } from '../helpers/app.ts';

/** What staging and production require to load at all. */
const DEPLOYED = {
  APP_SECRET: 'k3J9x!qPz7Lw2Vb8Nc4Rt6Ym1Hs5Dg0Fa',
  DATABASE_URL: 'postgres://groundwork:pw@127.0.0.1:5432/groundwork',
  SMTP_URL: 'smtp://mailer:pw@smtp.example.com:587',
  MAIL_FROM: 'Example <no-reply@example.com>',
  PUBLIC_URL: 'https://api.example.com',
  AUTH_JWT_PRIVATE_KEY: TEST_JWT_PRIVATE_KEY,
};

describe('shutdown settings', () => {
  test('regression (issue 12, defect 7): the drain delay defaults to what a load balancer needs when deployed, 0 elsewhere', () => {
    for (const env of ['staging', 'production'])
      assert.equal(
        loadConfig({ APP_ENV: env, ...DEPLOYED }).lifecycle.shutdownDrainDelayMs,
        10_000,
        env,
      );
    for (const env of ['development', 'test'])
      assert.equal(loadConfig({ APP_ENV: env }).lifecycle.shutdownDrainDelayMs, 0, env);
  });

  test('an explicit drain delay wins in every environment, 0 included', () => {
    const production = { APP_ENV: 'production', ...DEPLOYED };
    assert.equal(
      loadConfig({ ...production, SHUTDOWN_DRAIN_DELAY_MS: '0' }).lifecycle.shutdownDrainDelayMs,
      0,
    );
    assert.equal(
      loadConfig({ ...production, SHUTDOWN_DRAIN_DELAY_MS: '2500' }).lifecycle.shutdownDrainDelayMs,
      2_500,
    );
    assert.equal(
      loadConfig({ APP_ENV: 'test', SHUTDOWN_DRAIN_DELAY_MS: '700' }).lifecycle
        .shutdownDrainDelayMs,
      700,
    );
  });
});
