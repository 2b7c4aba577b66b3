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

/** Exactly one of `code`, `backupCode` (and `smsCode` where accepted); several or none is a 422. */
export function factorOf(body: {
  code?: string;
  backupCode?: string;
  smsCode?: string;
}): SecondFactor {
  const given = [body.code, body.backupCode, body.smsCode].filter((f) => f !== undefined);
  if (given.length === 1) {
    if (body.code !== undefined) return { code: body.code };
    if (body.backupCode !== undefined) return { backupCode: body.backupCode };
    if (body.smsCode !== undefined) return { smsCode: body.smsCode };
  }
  const sms = 'smsCode' in body;
  throw new HttpError(HttpCodes.VALIDATION_FAILED, {
    detail: sms
      ? 'Send exactly one of `code`, `backupCode` and `smsCode`.'
      : 'Send exactly one of `code` and `backupCode`.',
    errors: [
      {
        path: '/body',
        message: `must have exactly one of code, backupCode${sms ? ', smsCode' : ''}`,
      },
    ],
  });
}
