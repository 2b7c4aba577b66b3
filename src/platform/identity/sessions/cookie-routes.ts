import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { CSRF_HEADER, type CookieMode } from './cookies.ts';
import { clientOf } from '../request.ts';
import type { IdentityService } from './service.ts';
import { IdentityCodes } from '../errors.ts';

/** Cookie-mode routes under `/api/v1/auth`: signing out by the refresh cookie. */
export async function registerSessionRoutes(
  app: FastifyInstance,
  options: { service: () => IdentityService; cookies: CookieMode },
): Promise<void> {
  const { service, cookies } = options;
  app.withTypeProvider<TypeBoxTypeProvider>().delete(
    '/auth/refresh',
    {
      config: { auth: 'none' },
      schema: {
        tags: ['identity'],
        errorCodes: [IdentityCodes.ORIGIN_NOT_ALLOWED, IdentityCodes.CSRF_TOKEN_INVALID],
        summary: 'Sign out the session of the refresh cookie (cookie mode)',
        description: `For browsers in cookie mode, whose refresh token is in the HttpOnly cookie (sent to this path only): ends its session and clears both cookies. Needs \`Origin\` (PUBLIC_URL or CORS_ORIGINS, else 403 \`ORIGIN_NOT_ALLOWED\`) and \`${CSRF_HEADER}\` equal to the \`__Host-gw_csrf\` cookie (else 403 \`CSRF_TOKEN_INVALID\`). 204 also when the cookie is absent or no longer live.`,
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const token = cookies.refreshToken(request, undefined);
      if (token !== undefined) await service().logoutByRefreshToken(token, clientOf(request));
      cookies.clear(reply);
      reply.code(204);
      return null;
    },
  );
  return Promise.resolve();
}
