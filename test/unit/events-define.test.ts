import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Type } from 'typebox';
import {
  DISPATCHER_DEFAULTS,
  defineEvent,
  defineSubscriber,
  eventCatalog,
  eventPayloadErrors,
  eventRegistry,
  retryDelayMs,
} from '../../src/platform/events/index.ts';
import { identityEvents, identityModule } from '../../src/platform/identity/index.ts';
import { defineModule } from '../../src/platform/modules/index.ts';
import { createPlatform } from '../../src/platform/runtime/index.ts';
import { testConfig } from '../helpers/app.ts';

const payload = Type.Object(
  { id: Type.String(), n: Type.Integer() },
  { additionalProperties: false },
);
const base = {
  description: 'Something happened.',
  payload,
  example: { id: 'a', n: 1 },
  visibility: { permission: 'things:read' },
};
const noop = () => Promise.resolve();

describe('defineEvent', () => {
  test('accepts area.thing.happened names of 2 to 4 lowercase segments; defaults version 1, ownerVisible', () => {
    for (const type of ['user.registered', 'user.email_verified', 'shop.order.paid', 'a.b.c.d']) {
      const e = defineEvent({ ...base, type });
      assert.equal(e.type, type);
      assert.equal(e.version, 1);
      assert.deepEqual(e.visibility, { permission: 'things:read', ownerVisible: true });
    }
    const v2 = defineEvent({
      ...base,
      type: 'shop.order.paid',
      version: 2,
      visibility: { permission: 'orders:read', ownerVisible: false },
    });
    assert.equal(v2.version, 2);
    assert.equal(v2.visibility.ownerVisible, false);
  });

  test('refuses bad names', () => {
    for (const type of [
      'user',
      'User.Registered',
      'user.',
      '.user',
      'user..registered',
      'user.registered.now.and.then',
      'user-registered.x',
      '1user.registered',
      'user.registered ',
      'user/registered',
      '',
    ])
      assert.throws(() => defineEvent({ ...base, type }), /area\.thing\.happened/, type);
  });

  test('refuses an example that does not match the payload schema, a bad version or permission', () => {
    assert.throws(
      () => defineEvent({ ...base, type: 'x.y', example: { id: 'a', n: 1.5 } }),
      /example does not match.*\/n/,
    );
    assert.throws(
      () =>
        defineEvent({
          ...base,
          type: 'x.y',
          // A property the schema does not allow.
          example: { id: 'a', n: 1, extra: true } as unknown as { id: string; n: number },
        }),
      /example does not match/,
    );
    assert.throws(() => defineEvent({ ...base, type: 'x.y', version: 0 }), /version/);
    assert.throws(() => defineEvent({ ...base, type: 'x.y', version: 1.5 }), /version/);
    assert.throws(
      () => defineEvent({ ...base, type: 'x.y', visibility: { permission: 'everyone' } }),
      /resource:action/,
    );
  });

  test('eventPayloadErrors names the path of each problem', () => {
    const e = defineEvent({ ...base, type: 'x.y' });
    assert.deepEqual(eventPayloadErrors(e, { id: 'a', n: 2 }), []);
    const errors = eventPayloadErrors(e, { id: 3, n: 'two' });
    assert.ok(errors.some((x) => x.path === '/id'));
    assert.ok(errors.some((x) => x.path === '/n'));
  });

  test("identity's event types are valid and carry no secret-looking field", () => {
    for (const e of identityEvents) {
      const fields = Object.keys((e.payload as { properties?: object }).properties ?? {});
      for (const f of fields) assert.doesNotMatch(f, /password|hash|token|secret|email$/i, f);
    }
  });
});

describe('defineSubscriber and the registry', () => {
  test('subscriber names and the types they list are checked', () => {
    assert.throws(
      () => defineSubscriber({ name: 'Bad Name', events: '*', handle: noop }),
      /module\.what/,
    );
    assert.throws(() => defineSubscriber({ name: 'a.b', events: [], handle: noop }), /at least/);
    assert.throws(
      () => defineSubscriber({ name: 'a.b', events: ['nope'], handle: noop }),
      /not an event type/,
    );
  });

  test('two modules declaring one event type, or one subscriber name, refuse with both names', () => {
    const e = defineEvent({ ...base, type: 'x.y' });
    assert.throws(
      () =>
        eventRegistry([
          { module: 'one', events: [e] },
          { module: 'two', events: [defineEvent({ ...base, type: 'x.y' })] },
        ]),
      /event type x\.y is declared twice: by module one and by module two/,
    );
    const s = defineSubscriber({ name: 'm.s', events: '*', handle: noop });
    assert.throws(
      () =>
        eventRegistry([
          { module: 'one', subscribers: [s] },
          { module: 'two', subscribers: [s] },
        ]),
      /event subscriber m\.s is declared twice: by module one and by module two/,
    );
  });

  test('createPlatform refuses two modules declaring one event type, naming both, before opening anything', async () => {
    const again = defineModule({
      name: 'again',
      description: "Declares identity's user.registered again.",
      events: [defineEvent({ ...base, type: 'user.registered' })],
    });
    await assert.rejects(
      createPlatform(testConfig(), { modules: [identityModule, again], connect: false }),
      /event type user\.registered is declared twice: by module identity and by module again/,
    );
  });

  test('a subscriber naming a type no enabled module declares refuses to start', () => {
    const s = defineSubscriber({ name: 'm.s', events: ['x.unknown'], handle: noop });
    assert.throws(
      () => eventRegistry([{ module: 'one', subscribers: [s] }]),
      /m\.s \(module one\) wants x\.unknown/,
    );
  });

  test('types are listed sorted by name', () => {
    const r = eventRegistry([
      { module: 'one', events: [defineEvent({ ...base, type: 'z.y' })] },
      { module: 'two', events: [defineEvent({ ...base, type: 'a.b' })] },
    ]);
    assert.deepEqual(
      r.types.map((t) => t.type),
      ['a.b', 'z.y'],
    );
  });
});

describe('eventCatalog and retries', () => {
  test('the catalog renders each type with its schema and example', () => {
    const md = eventCatalog(identityEvents);
    assert.match(md, /### `user\.registered` \(version 1\)/);
    assert.match(md, /holders of `users:read`, and the user it concerns/);
    assert.match(md, /"emailVerified": false/);
    assert.ok(md.indexOf('role.granted') < md.indexOf('user.registered'), 'sorted');
  });

  test('retry delays grow exponentially with jitter, between half the step and the step, capped', () => {
    const s = { ...DISPATCHER_DEFAULTS, retryInitialMs: 1_000, retryMaxMs: 10_000 };
    for (let i = 0; i < 200; i++) {
      const d1 = retryDelayMs(1, s);
      assert.ok(d1 >= 500 && d1 <= 1_000, String(d1));
      const d3 = retryDelayMs(3, s);
      assert.ok(d3 >= 2_000 && d3 <= 4_000, String(d3));
      const d20 = retryDelayMs(20, s);
      assert.ok(d20 >= 5_000 && d20 <= 10_000, String(d20));
    }
  });
});
