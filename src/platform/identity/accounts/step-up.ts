import type { FastifyRequest } from 'fastify';
import { HttpError } from '../../http/index.ts';
import { currentUser } from '../authenticate.ts';
import { IdentityCodes } from '../errors.ts';

/**
 * Step-up: refuses (403 `REAUTHENTICATION_REQUIRED`, with `maxAge` in the problem) unless this
 * request's session authenticated at most `maxAgeS` seconds ago (sign-in, second factor or
 * `POST /auth/reauthenticate`). For a `required` route; the client re-authenticates and retries.
 */
export function requireRecentAuthentication(request: FastifyRequest, maxAgeS: number): void {
  const { authenticatedAt } = currentUser(request);
  const ageS = (Date.now() - authenticatedAt.getTime()) / 1_000;
  if (ageS <= maxAgeS) return;
  throw new HttpError(IdentityCodes.REAUTHENTICATION_REQUIRED, {
    detail: `This change needs an authentication at most ${maxAgeS} seconds old: confirm your password with POST /api/v1/auth/reauthenticate, then retry.`,
    extensions: { maxAge: maxAgeS },
  });
}
