import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { RateLimitPolicy } from '../../traffic/index.ts';
import { currentUser } from '../authenticate.ts';
import { requireRecentAuthentication } from '../accounts/step-up.ts';
import type { OidcService } from './service.ts';
import { clientOf } from '../request.ts';
import { TokenPairSchema } from '../schemas.ts';
import { IdentityCodes } from '../errors.ts';
import { FORM_BODY_LIMIT, ProviderParams, CallbackQuerySchema, IdentitySchema } from './schemas.ts';

/** Provider flows are cheap for us but start outbound calls: a per-IP cap, failing closed. */
const oidcLimit = (name: string): RateLimitPolicy[] => [
  { name, limit: 30, windowSeconds: 60, by: 'ip', failMode: 'closed' },
];

/** Sign-in with OpenID Connect providers and GitHub, and linked identities, under `/api/v1/auth`. */

/** What a callback (GET or form_post) can answer besides the platform's errors. */
const CALLBACK_ERRORS = [
  IdentityCodes.OIDC_PROVIDER_NOT_FOUND,
  IdentityCodes.OIDC_LOGIN_FAILED,
  IdentityCodes.OIDC_IDENTITY_TAKEN,
  IdentityCodes.OIDC_PROVIDER_UNAVAILABLE,
];

export async function registerOidcRoutes(
  app: FastifyInstance,
  options: { service: () => OidcService; stepUpMaxAgeS: number },
): Promise<void> {
  const { service, stepUpMaxAgeS } = options;
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const tags = ['identity'];
  const signedIn = { tags, security: [{ bearerAuth: [] }] };

  r.get(
    '/auth/oidc/:provider/authorize',
    {
      config: { auth: 'optional', rateLimit: oidcLimit('oidc-authorize-ip') },
      schema: {
        tags,
        errorCodes: [
          IdentityCodes.OIDC_PROVIDER_NOT_FOUND,
          IdentityCodes.OIDC_PROVIDER_UNAVAILABLE,
          IdentityCodes.REAUTHENTICATION_REQUIRED,
        ],
        summary: 'Start signing in with a provider',
        description: `Redirects (302) to the provider with an authorization code request (PKCE S256, state, nonce). With a valid access token, the flow links the provider account to yours instead of signing in; that needs an authentication at most ${stepUpMaxAgeS} seconds old (sign-in or \`POST /auth/reauthenticate\`), else 403 \`REAUTHENTICATION_REQUIRED\`. Unknown provider: 404.`,
        params: ProviderParams,
        response: { 302: Type.Null({ description: 'To the provider (`Location`).' }) },
      },
    },
    async (request, reply) => {
      const { provider } = request.params;
      const { userId, sessionId } = request;
      const link = userId && sessionId ? { userId, sessionId } : null;
      // Linking gives the account another way in: only a recently authenticated session may.
      if (link) requireRecentAuthentication(request, stepUpMaxAgeS);
      const url = await service().authorize(provider, link);
      reply.header('cache-control', 'no-store').redirect(url.href, 302);
      return null;
    },
  );

  r.get(
    '/auth/oidc/:provider/callback',
    {
      config: { auth: 'none', rateLimit: oidcLimit('oidc-callback-ip') },
      schema: {
        tags,
        errorCodes: CALLBACK_ERRORS,
        summary: 'Finish signing in with a provider',
        description:
          'The redirect URI registered at the provider. Answers the token pair (sessions with `amr: ["fed"]`) after signing in with a linked identity, linking (flow started signed in, or a provider-verified address of an existing account), or creating an account (address verified by the provider, no password). Any failure, including the provider refusing, is 400 `OIDC_LOGIN_FAILED`.',
        params: ProviderParams,
        querystring: CallbackQuerySchema,
        response: { 200: TokenPairSchema },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      return service().callback(request.params.provider, request.query, clientOf(request));
    },
  );

  // `form_post` providers (Apple) post the same parameters as a form. The parser is scoped to
  // these routes (Fastify encapsulation); written here since no form plugin is installed.
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: FORM_BODY_LIMIT },
    (_request, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(String(body))));
    },
  );
  r.post(
    '/auth/oidc/:provider/callback',
    {
      bodyLimit: FORM_BODY_LIMIT,
      config: { auth: 'none', rateLimit: oidcLimit('oidc-callback-ip') },
      schema: {
        tags,
        errorCodes: CALLBACK_ERRORS,
        summary: 'Finish signing in with a provider (form_post response mode)',
        description:
          'The same as the GET callback, for providers configured with `responseMode: "form_post"` (Apple when asked for the address): the parameters arrive as an `application/x-www-form-urlencoded` body.',
        params: ProviderParams,
        body: CallbackQuerySchema,
        response: { 200: TokenPairSchema },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      return service().callback(request.params.provider, request.body, clientOf(request));
    },
  );

  r.get(
    '/auth/identities',
    {
      config: { auth: 'required', cache: 'private' },
      schema: {
        ...signedIn,
        summary: 'Your linked provider identities',
        response: { 200: Type.Object({ items: Type.Array(IdentitySchema) }) },
      },
    },
    async (request) => {
      const { userId } = currentUser(request);
      const rows = await service().identities(userId);
      return { items: rows.map((r) => ({ ...r, linkedAt: r.linkedAt.toISOString() })) };
    },
  );

  r.delete(
    '/auth/identities/:id',
    {
      config: { auth: 'required' },
      schema: {
        ...signedIn,
        errorCodes: [IdentityCodes.IDENTITY_NOT_FOUND, IdentityCodes.LAST_SIGN_IN_METHOD],
        summary: 'Unlink a provider identity',
        description:
          '404 `IDENTITY_NOT_FOUND` for an id that is not one of yours; 409 `LAST_SIGN_IN_METHOD` when the account has no password and no other identity.',
        params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const { userId } = currentUser(request);
      await service().unlink(userId, request.params.id, clientOf(request));
      reply.code(204);
      return null;
    },
  );
}
