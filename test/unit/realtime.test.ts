// Pieces of the realtime area without a server: frame codecs, recovery decisions, channel names,
// Accept negotiation, and the checked-in Protobuf code matching the .proto files.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { prefersProtobuf } from '../../src/platform/protobuf/index.ts';
import { ChannelRegistry, defineChannel } from '../../src/platform/realtime/channels.ts';
import {
  decodeJson,
  decodeProtobuf,
  decodeServerProtobuf,
  encodeClientProtobuf,
  encodeJson,
  encodeProtobuf,
  FrameError,
  type ClientFrame,
  type ServerFrame,
} from '../../src/platform/realtime/codec.ts';
import { recover } from '../../src/platform/realtime/history.ts';

describe('realtime codecs', () => {
  const clientFrames: ClientFrame[] = [
    { type: 'auth', token: 'abc' },
    { type: 'auth' },
    { type: 'subscribe', channel: 'authors', offset: 1_765_000_000_000_123, id: 's1' },
    { type: 'unsubscribe', channel: 'authors', id: 'u1' },
    { type: 'publish', channel: 'room:1', data: { text: 'hi', n: 2, list: [true, null] }, id: 'p' },
    { type: 'command', id: 'c1', name: 'authors.get', payload: { id: 'x' } },
    { type: 'ping' },
    { type: 'pong' },
  ];

  test('client frames survive JSON and Protobuf alike', () => {
    for (const frame of clientFrames) {
      assert.deepEqual(decodeJson(JSON.stringify(frame)), frame);
      assert.deepEqual(decodeProtobuf(Buffer.from(encodeClientProtobuf(frame))), frame);
    }
  });

  test('server frames survive Protobuf with the JSON shape', () => {
    const frames: ServerFrame[] = [
      { type: 'ready', userId: 'u' },
      { type: 'ready', userId: null },
      { type: 'subscribed', channel: 'authors', offset: 1_765_000_000_000_999, id: 'x' },
      { type: 'event', channel: 'authors', event: 'a.b.c', data: { k: [1, 'two'] }, offset: 7 },
      { type: 'reset', channel: 'authors', offset: 9 },
      { type: 'result', id: 'c', payload: { items: [] } },
      {
        type: 'error',
        id: 'c',
        problem: {
          type: 'urn:x',
          title: 'T',
          status: 422,
          detail: 'd',
          code: 'VALIDATION_FAILED',
          requestId: 'r',
          errors: [{ path: '/body/name', message: 'm' }],
        },
      },
      { type: 'pong' },
    ];
    for (const frame of frames) {
      assert.deepEqual(decodeServerProtobuf(encodeProtobuf(frame)), frame);
      assert.deepEqual(JSON.parse(encodeJson(frame)), frame);
    }
  });

  test('bad frames: malformed versus unknown type', () => {
    const reason = (f: () => unknown) => {
      try {
        f();
      } catch (error) {
        assert.ok(error instanceof FrameError);
        return error.reason;
      }
      return 'accepted';
    };
    assert.equal(
      reason(() => decodeJson('[1]')),
      'malformed',
    );
    assert.equal(
      reason(() => decodeJson('{"type":"launch"}')),
      'unknown-type',
    );
    assert.equal(
      reason(() => decodeJson('{"type":"subscribe"}')),
      'malformed',
    );
    assert.equal(
      reason(() => decodeJson('{"type":"subscribe","channel":"a","offset":-1}')),
      'malformed',
    );
    assert.equal(
      reason(() => decodeJson('{"type":"command","name":"x"}')),
      'malformed',
    );
    assert.equal(
      reason(() => decodeProtobuf(Buffer.from([0xff, 0xff]))),
      'malformed',
    );
    // A server-only frame sent by a client.
    assert.equal(
      reason(() =>
        decodeProtobuf(Buffer.from(encodeProtobuf({ type: 'reset', channel: 'a', offset: 1 }))),
      ),
      'unknown-type',
    );
  });
});

describe('realtime recovery', () => {
  const e = (offset: number) => ({ offset, envelope: { c: 'c', e: 'x', d: null, t: 0 } });
  test('replays what the client missed, or resets', () => {
    assert.deepEqual(recover(10, 10, [e(9), e(10)]), { kind: 'events', latest: 10, events: [] });
    assert.deepEqual(recover(12, 10, [e(9), e(10), e(11), e(12)]).kind, 'events');
    assert.deepEqual(
      (recover(12, 10, [e(9), e(10), e(11), e(12)]) as { events: unknown[] }).events,
      [e(11), e(12)],
    );
    assert.equal(recover(20, 10, [e(15), e(20)]).kind, 'reset', 'history no longer covers 11');
    assert.equal(recover(20, 10, []).kind, 'reset');
    assert.equal(recover(5, 10, []).kind, 'reset', 'an offset from the future');
  });
});

describe('realtime channels', () => {
  test('exact names and families with one parameter; anything else is unknown', () => {
    const r = new ChannelRegistry();
    r.add(defineChannel({ name: 'authors', description: 'x' }));
    r.add(defineChannel({ name: 'user:*', description: 'x' }));
    assert.equal(r.resolve('authors')?.param, '');
    assert.equal(r.resolve('user:0190-abc')?.param, '0190-abc');
    for (const bad of [
      'user',
      'user:',
      'user:a:b',
      'Authors',
      'authors:1',
      'x'.repeat(300),
      'user:a b',
    ])
      assert.equal(r.resolve(bad), undefined, bad);
    assert.throws(() => r.add(defineChannel({ name: 'authors', description: 'again' })), /twice/);
    assert.throws(() => defineChannel({ name: 'Bad Name', description: 'x' }), /must be/);
  });
});

describe('Accept negotiation', () => {
  test('Protobuf only when preferred over JSON', () => {
    assert.equal(prefersProtobuf('application/x-protobuf'), true);
    assert.equal(prefersProtobuf('application/x-protobuf, application/json;q=0.5'), true);
    assert.equal(prefersProtobuf('application/json, application/x-protobuf'), false);
    assert.equal(prefersProtobuf('application/json;q=0.2, application/x-protobuf;q=0.9'), true);
    assert.equal(prefersProtobuf('*/*'), false);
    assert.equal(prefersProtobuf(undefined), false);
    assert.equal(prefersProtobuf('application/x-protobuf;q=0'), false);
  });
});

describe('generated Protobuf code', () => {
  test('the checked-in code is what buf generates from proto/', async (t) => {
    const out = await mkdtemp(join(tmpdir(), 'gw-buf-'));
    t.after(() => rm(out, { recursive: true, force: true }));
    const root = join(import.meta.dirname, '..', '..');
    try {
      execFileSync(join(root, 'node_modules', '.bin', 'buf'), ['generate', '-o', out], {
        cwd: root,
        stdio: 'pipe',
        env: {
          ...process.env,
          PATH: `${join(root, 'node_modules', '.bin')}:${process.env.PATH ?? ''}`,
        },
      });
    } catch (error) {
      t.skip(`buf could not run: ${String(error).slice(0, 200)}`);
      return;
    }
    for (const file of [
      'src/platform/realtime/gen/groundwork/realtime/v1/realtime_pb.ts',
      'src/platform/realtime/gen/groundwork/problem/v1/problem_pb.ts',
      'src/apps/authors/gen/groundwork/authors/v1/authors_pb.ts',
    ]) {
      assert.equal(
        await readFile(join(out, file), 'utf8'),
        await readFile(join(root, file), 'utf8'),
        `${file} is stale: run npx buf generate`,
      );
    }
  });
});
