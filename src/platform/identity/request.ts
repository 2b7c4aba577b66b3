import type { FastifyRequest } from 'fastify';
import { HttpCodes, HttpError } from '../http/index.ts';
import type { Client, SecondFactor } from './schemas.ts';

/** Where the request came from, for sessions, history and audit. */
export function clientOf(request: FastifyRequest): Client {
  const ua = request.headers['user-agent'];
  return {
    ip: request.ip,
    userAgent: typeof ua === 'string' ? ua.slice(0, 512) : null,
    requestId: request.id,
  };
}

/**
 * The `email` of a request's body, for a rate limit keyed on the address (a limit's key function
 * serves any route, so the body is not typed here).
 */
export function emailOfBody(request: FastifyRequest): string | undefined {
  const body: unknown = request.body;
  if (typeof body !== 'object' || body === null || !('email' in body)) return undefined;
  return typeof body.email === 'string' ? body.email : undefined;
}

/** Exactly one of `code` and `backupCode`; both or neither is a 422. */
export function factorOf(body: { code?: string; backupCode?: string }): SecondFactor {
  if (body.code !== undefined && body.backupCode === undefined) return { code: body.code };
  if (body.backupCode !== undefined && body.code === undefined)
    return { backupCode: body.backupCode };
  throw new HttpError(HttpCodes.VALIDATION_FAILED, {
    detail: 'Send exactly one of `code` and `backupCode`.',
    errors: [{ path: '/body', message: 'must have exactly one of code, backupCode' }],
  });
}
