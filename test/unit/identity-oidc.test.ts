import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, maskEnv } from '../../src/platform/config/index.ts';
import { usernameCandidates, identitySettings } from '../../src/platform/identity/index.ts';
import { knownModules, loadAppConfig } from '../../src/app.ts';

const google = {
  id: 'google',
  kind: 'oidc',
  issuer: 'https://accounts.google.com/',
  clientId: 'client-1',
  clientSecret: 'google-secret-value',
};
const github = { id: 'github', kind: 'github', clientId: 'Iv1.x', clientSecret: 'gh-secret-value' };

function issuesOf(value: string, env = 'test'): string[] {
  try {
    loadAppConfig({ APP_ENV: env, AUTH_OIDC_PROVIDERS: value });
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.issues.filter((i) => i.key === 'AUTH_OIDC_PROVIDERS').map((i) => i.message);
  }
  return [];
}

describe('AUTH_OIDC_PROVIDERS', () => {
  test('unset means no provider', () => {
    assert.deepEqual(identitySettings(loadAppConfig({ APP_ENV: 'test' })).oidcProviders, []);
  });

  test('defaults: OpenID scopes, query response mode, the issuer as given, GitHub real endpoints and scopes', () => {
    const [g, gh] = identitySettings(
      loadAppConfig({
        APP_ENV: 'test',
        AUTH_OIDC_PROVIDERS: JSON.stringify([google, github]),
      }),
    ).oidcProviders;
    assert.deepEqual(g, {
      ...google,
      issuer: 'https://accounts.google.com/',
      responseMode: 'query',
      scopes: ['openid', 'email', 'profile'],
    });
    assert.deepEqual(gh, {
      ...github,
      authorizeUrl: 'https://github.com/login/oauth/authorize',
      tokenUrl: 'https://github.com/login/oauth/access_token',
      apiUrl: 'https://api.github.com',
      scopes: ['read:user', 'user:email'],
    });
  });

  test('bad values are config errors that never print the value (it holds secrets)', () => {
    const cases: [string, RegExp][] = [
      ['{not json', /not valid JSON/],
      [JSON.stringify({ ...google }), /must be array/],
      [JSON.stringify([{ ...google, kind: 'saml' }]), /./],
      [JSON.stringify([{ ...google, clientSecret: '' }]), /./],
      [JSON.stringify([{ ...google, id: 'Bad Id' }]), /./],
      [JSON.stringify([{ ...google, extra: 1 }]), /./],
      [JSON.stringify([google, google]), /appears twice/],
      [JSON.stringify([{ ...google, scopes: ['email'] }]), /must include "openid"/],
    ];
    for (const [value, expected] of cases) {
      const issues = issuesOf(value);
      assert.equal(issues.length >= 1, true, value);
      assert.match(issues.join(' '), expected, value);
      assert.equal(issues.join(' ').includes('google-secret-value'), false);
    }
  });

  test('staging and production require https provider URLs', () => {
    const local = JSON.stringify([{ ...google, issuer: 'http://127.0.0.1:8080' }]);
    assert.deepEqual(issuesOf(local), []);
    assert.match(issuesOf(local, 'production').join(' '), /must be https in production/);
    const gh = JSON.stringify([{ ...github, tokenUrl: 'http://127.0.0.1:1/token' }]);
    assert.match(issuesOf(gh, 'staging').join(' '), /must be https in staging/);
  });

  test('config:check masks each client secret and keeps the rest readable', () => {
    const config = loadAppConfig({
      APP_ENV: 'test',
      AUTH_OIDC_PROVIDERS: JSON.stringify([google, github]),
    });
    const masked = String(
      maskEnv(config.vars, { vars: config.moduleVars, slices: knownModules() }).AUTH_OIDC_PROVIDERS,
    );
    assert.equal(masked.includes('google-secret-value'), false);
    assert.equal(masked.includes('gh-secret-value'), false);
    assert.deepEqual(
      (JSON.parse(masked) as { id: string; clientSecret: string }[]).map((p) => [
        p.id,
        p.clientSecret,
      ]),
      [
        ['google', '********'],
        ['github', '********'],
      ],
    );
  });
});

describe('usernameCandidates', () => {
  const fixed = () => '4242';

  test('the preferred name made to fit, then with suffixes', () => {
    assert.deepEqual(usernameCandidates(['Octo Cat!', 'ada@example.com'], fixed).slice(0, 2), [
      'octo_cat',
      'octo_cat_4242',
    ]);
  });

  test('no usable hint: the next one; none at all: "member"', () => {
    assert.equal(usernameCandidates([null, '...', 'ada'], fixed)[0], 'ada');
    assert.equal(usernameCandidates([null], fixed)[0], 'member');
  });

  test('reserved, too short and too long names still give valid candidates', () => {
    const admin = usernameCandidates(['admin'], fixed);
    assert.equal(admin.includes('admin'), false);
    assert.equal(admin[0], 'admin_4242');
    assert.equal(usernameCandidates(['x'], fixed)[0], 'x_user');
    const long = usernameCandidates(['a'.repeat(80)], fixed);
    for (const c of long) assert.match(c, /^[a-z0-9_.-]{3,32}$/);
  });

  test('every candidate is distinct', () => {
    let n = 0;
    const c = usernameCandidates(['ada'], () => String((n += 1)));
    assert.equal(new Set(c).size, c.length);
    assert.equal(c.length, 6);
  });
});
