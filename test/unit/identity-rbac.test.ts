import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decide, foldGrants, isPermission } from '../../src/platform/identity/rbac/permissions.ts';
import { identitySettings } from '../../src/platform/identity/index.ts';
import { loadAppConfig } from '../../src/app.ts';

describe('rbac: permissions', () => {
  test('permissions are resource:action or resource:*, lowercase, nothing else', () => {
    for (const ok of ['users:read', 'jobs:admin', 'posts:*', 'blog-posts:re-publish', 'a:b'])
      assert.equal(isPermission(ok), true, ok);
    for (const bad of [
      '',
      'users',
      'users:',
      ':read',
      '*:*',
      '*:read',
      'Users:read',
      'users:Read',
      'users:read:own',
      'users: read',
      'users:**',
      '1users:read',
      'users:read\n',
      `${'a'.repeat(49)}:read`,
    ])
      assert.equal(isPermission(bad), false, JSON.stringify(bad));
  });

  test('a permission needs MFA only when every role granting it requires MFA', () => {
    const grants = foldGrants([
      { name: 'admin', permissions: ['users:read', 'users:admin', 'jobs:*'], mfa_required: true },
      { name: 'moderator', permissions: ['users:read'], mfa_required: false },
    ]);
    assert.deepEqual(grants, {
      roles: ['admin', 'moderator'],
      permissions: { 'users:read': false, 'users:admin': true, 'jobs:*': true },
    });
    assert.equal(decide(grants, 'users:read', ['pwd']), 'granted');
    assert.equal(decide(grants, 'users:admin', ['pwd']), 'mfa-required');
    assert.equal(decide(grants, 'users:admin', ['pwd', 'otp']), 'granted');
    assert.equal(decide(grants, 'jobs:admin', ['pwd']), 'mfa-required', 'through jobs:*');
    assert.equal(decide(grants, 'jobs:admin', ['otp']), 'granted');
    assert.equal(decide(grants, 'roles:admin', ['pwd', 'otp']), 'forbidden');
    assert.equal(decide(foldGrants([]), 'users:read', ['otp']), 'forbidden');
  });

  test('an explicit grant without MFA wins over a wildcard that needs it, and the reverse', () => {
    const grants = foldGrants([
      { name: 'a', permissions: ['posts:*'], mfa_required: true },
      { name: 'b', permissions: ['posts:read'], mfa_required: false },
    ]);
    assert.equal(decide(grants, 'posts:read', []), 'granted');
    assert.equal(decide(grants, 'posts:delete', []), 'mfa-required');
  });

  test('a grant set is plain JSON (it goes through the cache unchanged)', () => {
    const grants = foldGrants([{ name: 'x', permissions: ['a:b'], mfa_required: false }]);
    assert.deepEqual(JSON.parse(JSON.stringify(grants)), grants);
  });

  test('the permission cache lifetime defaults to 30 s and takes a unit', () => {
    assert.equal(identitySettings(loadAppConfig({ APP_ENV: 'test' })).permissionCacheTtlS, 30);
    assert.equal(
      identitySettings(loadAppConfig({ APP_ENV: 'test', AUTH_PERMISSION_CACHE_TTL: '2m' }))
        .permissionCacheTtlS,
      120,
    );
    assert.throws(() => loadAppConfig({ APP_ENV: 'test', AUTH_PERMISSION_CACHE_TTL: '30' }));
  });
});
