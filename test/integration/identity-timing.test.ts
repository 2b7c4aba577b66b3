import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { MailHarness } from '../helpers/mail.ts';
import {
  bearer,
  createUser,
  GOOD_PASSWORD,
  login,
  signIn,
  startIdentityHarness,
  type TestUser,
} from '../helpers/identity.ts';
import { compareTimings, describeComparison, timeInterleaved } from '../helpers/timing.ts';

// Rounds of A and B each, interleaved in random order; the warm-up rounds are not kept.
const ROUNDS = 250;
const WARM_UP = 30;
const TRIES = ROUNDS + WARM_UP;

/**
 * Each pair of paths below once told an account's state by its answer time alone (a few ms, told
 * apart in 75–97% of single tries). Each test times both paths through the app and fails when a
 * single try still tells them apart (see `compareTimings`).
 */
describe('identity: answer times do not reveal whether an account exists', () => {
  let h: MailHarness;
  before(async () => {
    // No lockout during the runs (a locked account would be a third path).
    h = await startIdentityHarness({ AUTH_LOCKOUT_THRESHOLD: '1000' });
  });
  after(() => h.close());

  const post = (url: string, payload: object, headers: Record<string, string> = {}) =>
    h.app.inject({ method: 'POST', url: `/api/v1${url}`, payload, headers });
  let seq = 0;
  const fresh = (what: string) => `${what}-${String(process.pid)}-${String(++seq)}@example.net`;

  const users = async (n: number, options: { verified?: boolean } = {}) => {
    const made: TestUser[] = [];
    for (let i = 0; i < n; i++) made.push(await createUser(h, options));
    return made;
  };

  const check = (label: string, a: number[], b: number[]) => {
    const c = compareTimings(a, b);
    console.log(describeComparison(label, c));
    assert.equal(c.differ, false, describeComparison(label, c));
  };

  test('regression: sign-in with a wrong password answers like sign-in to an unknown account', async () => {
    const [user] = await users(1);
    const known = user as TestUser;
    const { a, b } = await timeInterleaved(
      async () => {
        const res = await login(h.app, { login: known.email, password: 'wrong-password-1' });
        assert.equal(res.statusCode, 401);
      },
      async () => {
        const res = await login(h.app, { login: fresh('nobody'), password: 'wrong-password-1' });
        assert.equal(res.statusCode, 401);
      },
      { rounds: ROUNDS, warmUp: WARM_UP, seed: 1 },
    );
    check('login: existing vs unknown account', a, b);
  });

  test('regression: resending verification to an unverified account answers like to an unknown address', async () => {
    const unverified = await users(TRIES, { verified: false });
    const { a, b } = await timeInterleaved(
      async (i) => {
        const res = await post('/auth/verify-email/resend', { email: unverified[i]?.email });
        assert.equal(res.statusCode, 202);
      },
      async () => {
        const res = await post('/auth/verify-email/resend', { email: fresh('nobody') });
        assert.equal(res.statusCode, 202);
      },
      { rounds: ROUNDS, warmUp: WARM_UP, seed: 2 },
    );
    check('resend: unverified vs unknown', a, b);
  });

  test('regression: changing the address to a taken one answers like to a free one', async () => {
    const taken = await users(TRIES);
    const [me] = await users(1);
    const { accessToken } = await signIn(h.app, me as TestUser);
    const change = (email: string) =>
      h.app.inject({
        method: 'PATCH',
        url: '/api/v1/users/me',
        payload: { email },
        headers: bearer(accessToken),
      });
    const { a, b } = await timeInterleaved(
      async (i) => {
        const res = await change((taken[i] as TestUser).email);
        assert.equal(res.statusCode, 202, res.body);
      },
      async () => {
        const res = await change(fresh('free'));
        assert.equal(res.statusCode, 202, res.body);
      },
      { rounds: ROUNDS, warmUp: WARM_UP, seed: 3 },
    );
    check('address change: taken vs free', a, b);
  });

  test('regression: registering with a taken address answers like with a new one', async () => {
    // Fewer rounds: each registration rates its password (the strength worker) and hashes it.
    const rounds = 200;
    const taken = await users(rounds + WARM_UP);
    const register = (email: string) =>
      post('/auth/register', {
        email,
        username: `reg_${String(process.pid)}_${String(++seq)}`,
        password: GOOD_PASSWORD,
      });
    const { a, b } = await timeInterleaved(
      async (i) => {
        const res = await register((taken[i] as TestUser).email);
        assert.equal(res.statusCode, 202, res.body);
      },
      async () => {
        const res = await register(fresh('new'));
        assert.equal(res.statusCode, 202, res.body);
      },
      { rounds, warmUp: WARM_UP, seed: 4 },
    );
    check('register: taken vs new address', a, b);
  });
});
