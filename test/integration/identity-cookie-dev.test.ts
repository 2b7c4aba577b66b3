import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { TEST_JWT_PRIVATE_KEY } from '../helpers/app.ts';
import { createUser, login, startIdentityHarness } from '../helpers/identity.ts';
import type { MailHarness } from '../helpers/mail.ts';
import { assertProblem } from '../helpers/problem.ts';

// In development with CORS_ORIGINS unset, local frontends pass CORS; cookie mode follows the same
// rule, or a local frontend would pass CORS and then be refused its cookie refresh.
describe('identity cookie mode in development: the origins CORS allows', () => {
  let h: MailHarness;
  before(async () => {
    h = await startIdentityHarness({
      APP_ENV: 'development',
      AUTH_JWT_PRIVATE_KEY: TEST_JWT_PRIVATE_KEY,
    });
  });
  after(() => h.close());

  test('regression: a local frontend (http://localhost:5173) refreshes in cookie mode; a look-alike origin is refused', async () => {
    const user = await createUser(h);
    const res = await login(
      h.app,
      { login: user.email, password: user.password },
      { 'x-token-transport': 'cookie' },
    );
    assert.equal(res.statusCode, 200, res.body);
    const jar = Object.fromEntries(res.cookies.map((c) => [c.name, c.value]));
    const csrf = jar['__Host-gw_csrf'] as string;
    const refresh = (origin: string) =>
      h.app.inject({
        method: 'POST',
        url: '/api/v1/auth/refresh',
        headers: {
          cookie: Object.entries(jar)
            .map(([k, v]) => `${k}=${v}`)
            .join('; '),
          origin,
          'x-csrf-token': csrf,
        },
        payload: {},
      });
    assertProblem(await refresh('http://localhost.evil.test:5173'), 403, 'ORIGIN_NOT_ALLOWED');
    assertProblem(await refresh('https://localhost:5173'), 403, 'ORIGIN_NOT_ALLOWED');
    const ok = await refresh('http://localhost:5173');
    assert.equal(ok.statusCode, 200, ok.body);
  });
});
