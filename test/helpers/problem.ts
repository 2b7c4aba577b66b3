import assert from 'node:assert/strict';
import type { ProblemBody } from '../../src/platform/http/index.ts';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';

/** Asserts a complete RFC 9457 problem response with this status and code; returns its body. */
export function assertProblem(
  res: { statusCode: number; headers: Record<string, unknown>; body: string },
  status: number,
  code: string,
): ProblemBody {
  assert.equal(res.statusCode, status, res.body);
  assert.equal(res.headers['content-type'], PROBLEM_CONTENT_TYPE);
  const body = JSON.parse(res.body) as ProblemBody;
  assert.equal(body.status, status);
  assert.equal(body.code, code);
  assert.equal(body.type, `urn:groundwork:problem:${code.toLowerCase().replaceAll('_', '-')}`);
  assert.equal(typeof body.title, 'string');
  assert.equal(typeof body.detail, 'string');
  assert.equal(body.requestId, res.headers['x-request-id']);
  return body;
}
