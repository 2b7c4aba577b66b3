import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { HttpError } from '../../http/index.ts';
import { AuthLimits } from '../../traffic/index.ts';
import { currentUser } from '../authenticate.ts';
import type { CookieMode } from './cookies.ts';
import { parseDevice } from './device.ts';
import { IdentityCodes } from '../errors.ts';
import { clientOf, emailOfBody } from '../request.ts';
import { Accepted, AUTH_BODY_LIMIT, MfaChallengeSchema, Password } from '../schemas.ts';
import { SignInTokenPairSchema, SessionSchema, LoginEventSchema } from './schemas.ts';
import type { IdentityService } from './service.ts';

/** The account each sign-in request names, resolved by `loginLimitKey` for the login limit. */
const loginLimitKeys = new WeakMap<FastifyRequest, string>();

const ACCEPTED_MESSAGE =
  'If the address can be used, a message is on its way: follow its link to confirm the address.';

/** The identity API under `/api/v1/auth`. */
export async function registerAuthRoutes(
  app: FastifyInstance,
  options: { service: () => IdentityService; cookies: CookieMode },
): Promise<void> {
  const service = options.service;
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const tags = ['identity'];
  const common = { tags };
  const signedIn = { ...common, security: [{ bearerAuth: [] }] };

  r.post(
    '/auth/register',
    {
      bodyLimit: AUTH_BODY_LIMIT,
      config: { auth: 'none', rateLimit: AuthLimits.register() },
      schema: {
        ...common,
        errorCodes: [
          IdentityCodes.USERNAME_TAKEN,
          IdentityCodes.INVALID_EMAIL,
          IdentityCodes.INVALID_USERNAME,
          IdentityCodes.WEAK_PASSWORD,
        ],
        summary: 'Create an account',
        description:
          'Answers 202 with the same body whether the address is new or already has an account (that address is told by mail instead). A taken user name is 409: user names are public.',
        body: Type.Object({
          email: Type.String({ minLength: 3, maxLength: 320 }),
          username: Type.String({ minLength: 1, maxLength: 64 }),
          password: Password,
        }),
        response: { 202: Accepted },
      },
    },
    async (request, reply) => {
      await service().register(request.body, clientOf(request));
      reply.code(202);
      return { status: 'accepted' as const, message: ACCEPTED_MESSAGE };
    },
  );

  r.post(
    '/auth/verify-email',
    {
      bodyLimit: AUTH_BODY_LIMIT,
      config: { auth: 'none' },
      schema: {
        ...common,
        errorCodes: [IdentityCodes.INVALID_EMAIL_TOKEN],
        summary: 'Confirm an address with the token from the mail',
        body: Type.Object({ token: Type.String({ minLength: 1, maxLength: 128 }) }),
        response: { 200: Type.Object({ verified: Type.Literal(true) }) },
      },
    },
    async (request) => {
      await service().verifyEmail(request.body.token, request.id);
      return { verified: true as const };
    },
  );

  r.post(
    '/auth/verify-email/resend',
    {
      bodyLimit: AUTH_BODY_LIMIT,
      config: { auth: 'none', rateLimit: AuthLimits.accountMail(emailOfBody) },
      schema: {
        ...common,
        summary: 'Send the verification mail again',
        description: 'Always 202, whether or not the address has an unverified account.',
        body: Type.Object({ email: Type.String({ minLength: 1, maxLength: 320 }) }),
        response: { 202: Accepted },
      },
    },
    async (request, reply) => {
      service().resendVerification(request.body.email, clientOf(request));
      reply.code(202);
      return { status: 'accepted' as const, message: ACCEPTED_MESSAGE };
    },
  );

  r.post(
    '/auth/login',
    {
      bodyLimit: AUTH_BODY_LIMIT,
      config: {
        auth: 'none',
        rateLimit: AuthLimits.login((request) => loginLimitKeys.get(request)),
        refreshCookie: true,
      },
      // Before the route's rate limits (added after it): they key on the account resolved here.
      preHandler: async (request) => {
        loginLimitKeys.set(request, await service().loginLimitKey(request.body.login));
      },
      schema: {
        ...common,
        errorCodes: [IdentityCodes.INVALID_CREDENTIALS],
        summary: 'Sign in with an address or user name',
        description:
          'Wrong password, unknown account, unverified address and locked account are all the same 401 `INVALID_CREDENTIALS`. An account with a second factor gets `{mfaRequired, mfaToken}` instead of tokens: finish with `POST /auth/mfa/verify`.',
        body: Type.Object({
          login: Type.String({ minLength: 1, maxLength: 320 }),
          password: Password,
          rememberMe: Type.Optional(Type.Boolean()),
        }),
        response: { 200: Type.Union([SignInTokenPairSchema, MfaChallengeSchema]) },
      },
    },
    async (request) => service().login(request.body, clientOf(request)),
  );

  r.post(
    '/auth/refresh',
    {
      bodyLimit: AUTH_BODY_LIMIT,
      config: { auth: 'none', refreshCookie: true },
      schema: {
        ...common,
        errorCodes: [
          IdentityCodes.INVALID_REFRESH_TOKEN,
          IdentityCodes.ORIGIN_NOT_ALLOWED,
          IdentityCodes.CSRF_TOKEN_INVALID,
        ],
        summary: 'Exchange a refresh token for a new pair',
        description:
          'The refresh token is spent. Presented again after the grace window, it revokes its session. Without `refreshToken` in the body, the `__Secure-gw_refresh` cookie is read (cookie mode): then `Origin` must be `PUBLIC_URL` or one of `CORS_ORIGINS` (403 `ORIGIN_NOT_ALLOWED`) and `X-CSRF-Token` must equal the `__Host-gw_csrf` cookie (403 `CSRF_TOKEN_INVALID`), and the new pair comes back in cookie mode.',
        body: Type.Object({
          refreshToken: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
        }),
        response: { 200: SignInTokenPairSchema },
      },
    },
    async (request) => {
      const token = options.cookies.refreshToken(request, request.body.refreshToken);
      if (token === undefined) throw new HttpError(IdentityCodes.INVALID_REFRESH_TOKEN);
      return service().refresh(token, clientOf(request));
    },
  );

  r.post(
    '/auth/logout',
    {
      config: { auth: 'required' },
      schema: { ...signedIn, summary: 'Sign out this session', response: { 204: Type.Null() } },
    },
    async (request, reply) => {
      const { userId, sessionId } = currentUser(request);
      await service().logout(userId, sessionId, 'logout', clientOf(request));
      reply.code(204);
      return null;
    },
  );

  r.post(
    '/auth/logout-all',
    {
      config: { auth: 'required' },
      schema: {
        ...signedIn,
        summary: 'Sign out every session, this one included',
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const { userId } = currentUser(request);
      await service().logout(userId, undefined, 'logout-all', clientOf(request));
      reply.code(204);
      return null;
    },
  );

  r.get(
    '/auth/sessions',
    {
      config: { auth: 'required', cache: 'private' },
      schema: {
        ...signedIn,
        summary: 'Your live sessions',
        response: { 200: Type.Object({ items: Type.Array(SessionSchema) }) },
      },
    },
    async (request) => {
      const { userId, sessionId } = currentUser(request);
      const rows = await service().sessions(userId);
      return {
        items: rows.map((s) => ({
          id: s.id,
          current: s.id === sessionId,
          userAgent: s.user_agent,
          device: parseDevice(s.user_agent),
          ip: s.ip,
          rememberMe: s.remember_me,
          createdAt: s.created_at.toISOString(),
          lastUsedAt: s.last_used_at.toISOString(),
          expiresAt: s.expires_at.toISOString(),
        })),
      };
    },
  );

  r.delete(
    '/auth/sessions/:id',
    {
      config: { auth: 'required' },
      schema: {
        ...signedIn,
        errorCodes: [IdentityCodes.SESSION_NOT_FOUND],
        summary: 'Sign out one of your sessions',
        params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const { userId } = currentUser(request);
      const { id } = request.params;
      const revoked = await service().logout(userId, id, 'revoked', clientOf(request));
      if (revoked === 0) throw new HttpError(IdentityCodes.SESSION_NOT_FOUND);
      reply.code(204);
      return null;
    },
  );

  r.get(
    '/auth/login-history',
    {
      config: { auth: 'required', cache: 'private' },
      schema: {
        ...signedIn,
        summary: 'Your latest sign-ins and failed attempts',
        querystring: Type.Object({
          limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
        }),
        response: { 200: Type.Object({ items: Type.Array(LoginEventSchema) }) },
      },
    },
    async (request) => {
      const { userId } = currentUser(request);
      const { limit } = request.query;
      const rows = await service().loginHistory(userId, limit);
      return {
        items: rows.map((e) => ({
          id: e.id,
          outcome: e.outcome,
          ip: e.ip,
          userAgent: e.user_agent,
          device: parseDevice(e.user_agent),
          sessionId: e.session_id,
          at: e.created_at.toISOString(),
        })),
      };
    },
  );
}
