import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  HttpCodes,
  HttpError,
  defineErrorCodes,
  listErrorCodes,
  problemType,
  newRequestId,
  requestIdFrom,
  statusOf,
  toHttpError,
} from '../../src/platform/http/index.ts';
import { fieldErrors } from '../../src/platform/http/problem.ts';

describe('problem details', () => {
  test('problem type is the base plus the code in kebab case', () => {
    assert.equal(
      problemType('urn:groundwork:problem:', 'VALIDATION_FAILED'),
      'urn:groundwork:problem:validation-failed',
    );
  });

  test('Ajv errors become JSON-pointer paths prefixed by the request part', () => {
    const errors = fieldErrors('body', [
      {
        instancePath: '/email',
        message: 'must match format "email"',
        keyword: 'format',
        params: {},
      },
      {
        instancePath: '',
        message: "must have required property 'name'",
        keyword: 'required',
        params: { missingProperty: 'name' },
      },
      { instancePath: '/tags/2', message: 'must be string', keyword: 'type', params: {} },
      {
        instancePath: '/role',
        message: 'must be equal to one of the allowed values',
        keyword: 'enum',
        params: { allowedValues: ['a', 'b'] },
      },
    ]);
    assert.deepEqual(errors, [
      { path: '/body/email', message: 'must match format "email"' },
      { path: '/body/name', message: "must have required property 'name'" },
      { path: '/body/tags/2', message: 'must be string' },
      { path: '/body/role', message: 'must be equal to one of the allowed values: "a", "b"' },
    ]);
    assert.equal(
      fieldErrors('querystring', [{ instancePath: '/limit', message: 'x' }])[0]?.path,
      '/query/limit',
    );
  });

  test('unknown errors map to INTERNAL_ERROR and hide their message unless exposed', () => {
    const hidden = toHttpError(new Error('secret internals'), false);
    assert.equal(hidden.unexpected, true);
    assert.equal(hidden.httpError.code, 'INTERNAL_ERROR');
    assert.doesNotMatch(hidden.httpError.detail ?? '', /secret internals/);
    assert.match(
      toHttpError(new Error('secret internals'), true).httpError.detail ?? '',
      /secret internals/,
    );
    assert.equal(toHttpError('a string thrown', false).httpError.status, 500);
  });

  test('typed errors pass through; library 4xx keep a client-safe code', () => {
    const error = new HttpError(HttpCodes.FORBIDDEN, { detail: 'nope' });
    assert.equal(toHttpError(error, false).httpError, error);
    const lib = Object.assign(new Error('Bad thing'), { statusCode: 400 });
    assert.equal(toHttpError(lib, false).httpError.code, 'BAD_REQUEST');
    const timeout = Object.assign(new Error('t'), {
      code: 'FST_ERR_HANDLER_TIMEOUT',
      statusCode: 503,
    });
    assert.equal(toHttpError(timeout, false).httpError.code, 'HANDLER_TIMEOUT');
  });

  test('codes are UPPER_SNAKE, declared once, and statuses follow kinds', () => {
    assert.throws(() =>
      defineErrorCodes('x', { lowercase: { kind: 'Invalid', title: 't', description: 'd' } }),
    );
    assert.throws(() =>
      defineErrorCodes('other-area', {
        VALIDATION_FAILED: { kind: 'Invalid', title: 't', description: 'd' },
      }),
    );
    assert.throws(() => new HttpError('NEVER_DECLARED'));
    assert.equal(statusOf('RateLimited'), 429);
    const codes = listErrorCodes();
    assert.ok(codes.length >= 10);
    assert.equal(new Set(codes.map((c) => c.code)).size, codes.length);
  });
});

describe('request ids', () => {
  test('new ids are UUID v7 carrying the current millisecond', () => {
    const before = Date.now();
    const id = newRequestId();
    const after = Date.now();
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const ms = parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
    assert.ok(ms >= before && ms <= after);
    assert.notEqual(newRequestId(), newRequestId());
  });

  test('ids of one millisecond are distinct and in order, past the 4,096 of its counter', (t) => {
    t.mock.method(Date, 'now', () => 1_767_225_600_000);
    const ids = Array.from({ length: 10_000 }, () => newRequestId());
    t.mock.restoreAll();
    assert.equal(new Set(ids).size, ids.length);
    for (const id of ids)
      assert.match(id, /^019b76da-a800-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // Within one run of the counter, ids sort in the order they were made.
    const run = ids.slice(5000, 8000);
    assert.deepEqual([...run].sort(), run);
  });

  test('safe ids are kept, anything else is replaced', () => {
    assert.equal(requestIdFrom('abc-123_x.y:z'), 'abc-123_x.y:z');
    for (const bad of [undefined, '', 'a b', 'a\nb', 'é', 'x'.repeat(129), ['a', 'b']]) {
      const id = requestIdFrom(bad);
      assert.match(id, /^[0-9a-f-]{36}$/);
    }
  });
});
