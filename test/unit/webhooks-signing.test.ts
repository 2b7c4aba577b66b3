import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { newWebhookSecret, signWebhook } from '../../src/platform/webhooks/transport.ts';
import { loadStandardWebhooks, verifyBySpec } from '../helpers/webhooks-transport.ts';

// The signing test vector published with the Standard Webhooks reference libraries.
const VECTOR = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};

describe('webhook signing', () => {
  test('matches the Standard Webhooks test vector', () => {
    assert.equal(
      signWebhook([VECTOR.secret], VECTOR.id, VECTOR.timestamp, VECTOR.body),
      VECTOR.signature,
    );
    // The prefix is optional, as in the reference libraries.
    assert.equal(
      signWebhook([VECTOR.secret.slice('whsec_'.length)], VECTOR.id, VECTOR.timestamp, VECTOR.body),
      VECTOR.signature,
    );
  });

  test('new secrets: whsec_ and 32 random bytes in base64, never twice the same', () => {
    const a = newWebhookSecret();
    const b = newWebhookSecret();
    assert.match(a, /^whsec_[A-Za-z0-9+/]{43}=$/);
    assert.equal(Buffer.from(a.slice(6), 'base64').length, 32);
    assert.notEqual(a, b);
  });

  test('one signature per secret, space separated, in order', () => {
    const [s1, s2] = [newWebhookSecret(), newWebhookSecret()];
    const both = signWebhook([s1, s2], 'msg_1', 1_700_000_000, '{"a":1}');
    const parts = both.split(' ');
    assert.equal(parts.length, 2);
    assert.equal(parts[0], signWebhook([s1], 'msg_1', 1_700_000_000, '{"a":1}'));
    assert.equal(parts[1], signWebhook([s2], 'msg_1', 1_700_000_000, '{"a":1}'));
  });

  test('the id, the timestamp and every byte of the body are signed', () => {
    const secret = newWebhookSecret();
    const base = signWebhook([secret], 'msg_1', 1_700_000_000, '{"a":1}');
    assert.notEqual(signWebhook([secret], 'msg_2', 1_700_000_000, '{"a":1}'), base);
    assert.notEqual(signWebhook([secret], 'msg_1', 1_700_000_001, '{"a":1}'), base);
    assert.notEqual(signWebhook([secret], 'msg_1', 1_700_000_000, '{"a":2}'), base);
    assert.notEqual(signWebhook([secret], 'msg_1', 1_700_000_000, '{"a":1} '), base);
  });

  test('malformed secrets and timestamps are refused (a caller mistake, thrown)', () => {
    for (const secrets of [
      [],
      ['whsec_'],
      ['whsec_not base64!'],
      ['whsec_c2hvcnQ='],
      ['x'.repeat(200)],
    ])
      assert.throws(
        () => signWebhook(secrets, 'msg_1', 1, '{}'),
        TypeError,
        JSON.stringify(secrets),
      );
    const secret = newWebhookSecret();
    for (const timestamp of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])
      assert.throws(() => signWebhook([secret], 'msg_1', timestamp, '{}'), TypeError);
  });

  test('verified by the spec: during a rotation overlap, either secret verifies', () => {
    const [previous, next] = [newWebhookSecret(), newWebhookSecret()];
    const now = Math.floor(Date.now() / 1000);
    const body = JSON.stringify({
      type: 'webhook.test',
      timestamp: new Date().toISOString(),
      data: {},
    });
    const headers = {
      'webhook-id': 'msg_rotation',
      'webhook-timestamp': String(now),
      'webhook-signature': signWebhook([next, previous], 'msg_rotation', now, body),
    };
    assert.equal(verifyBySpec(previous, body, headers), true);
    assert.equal(verifyBySpec(next, body, headers), true);
    assert.equal(verifyBySpec(newWebhookSecret(), body, headers), false);
  });

  test('verified by the standardwebhooks npm library, with either secret of a rotation', async (t) => {
    const Webhook = await loadStandardWebhooks();
    if (!Webhook) {
      t.skip('the standardwebhooks package is not installed (devDependency to add)');
      return;
    }
    const [previous, next] = [newWebhookSecret(), newWebhookSecret()];
    const now = Math.floor(Date.now() / 1000);
    const body =
      '{"type":"user.registered","timestamp":"2026-12-06T18:00:00.000Z","data":{"id":"u1"}}';
    const headers = {
      'webhook-id': 'msg_lib',
      'webhook-timestamp': String(now),
      'webhook-signature': signWebhook([next, previous], 'msg_lib', now, body),
    };
    assert.deepEqual(new Webhook(previous).verify(body, headers), JSON.parse(body));
    assert.deepEqual(new Webhook(next).verify(body, headers), JSON.parse(body));
    assert.throws(() => new Webhook(newWebhookSecret()).verify(body, headers));
    assert.throws(() => new Webhook(next).verify(`${body} `, headers));
  });
});
