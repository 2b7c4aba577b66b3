import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpCodes, HttpError } from '../../http/index.ts';
import { IdentityCodes } from '../errors.ts';
import { isPermission, type AccessControl } from './permissions.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The permission (`resource:action`) a caller needs: anonymous 401, lacking 403 `FORBIDDEN`,
     * granted only by MFA-required roles to a session without a second factor 403 `MFA_REQUIRED`.
     */
    permission?: string;
  }
}

/**
 * Adds a permission check to every route registered after it that declares `config.permission`
 * (decided once, at registration: other routes pay nothing). The check is a `preValidation` hook:
 * after authentication and the API rate limit (so refused attempts are counted), before the body
 * and query are validated (so an anonymous caller learns nothing about the route's input).
 * Without `access` (no database) every such route answers 401.
 */
export function registerPermissionChecks(app: FastifyInstance, access: AccessControl | null): void {
  app.addHook('onRoute', (route) => {
    const permission = route.config?.permission;
    if (permission === undefined) return;
    if (!isPermission(permission))
      throw new Error(`route ${route.url}: "${permission}" is not a resource:action permission`);
    if (route.config?.auth === 'none')
      throw new Error(`route ${route.url}: a permission needs authentication (auth is "none")`);
    const check = async (request: FastifyRequest) => {
      const userId = request.userId;
      if (userId === undefined || access === null)
        throw new HttpError(HttpCodes.UNAUTHORIZED, {
          detail: 'Sign in and send the access token as `Authorization: Bearer <token>`.',
          headers: { 'www-authenticate': 'Bearer realm="groundwork"' },
        });
      const verdict = await access.check(userId, permission, request.amr ?? []);
      if (verdict === 'forbidden')
        throw new HttpError(HttpCodes.FORBIDDEN, {
          detail: `This needs the \`${permission}\` permission.`,
        });
      if (verdict === 'mfa-required') throw new HttpError(IdentityCodes.MFA_REQUIRED);
    };
    route.preValidation = [check, ...[route.preValidation ?? []].flat()];
  });
}
