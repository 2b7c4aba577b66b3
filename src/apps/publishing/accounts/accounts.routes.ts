import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { HttpError } from '../../../platform/http/index.ts';
import { currentUser } from '../../../platform/identity/index.ts';
import type { ModuleApp } from '../../../platform/modules/index.ts';
import type { RateLimitPolicy } from '../../../platform/traffic/index.ts';
import type { PlatformAdapter, PlatformId } from '../platforms/types.ts';
import { AccountCodes } from './accounts.errors.ts';
import {
  AccountList,
  AccountParams,
  AccountResponse,
  CallbackQuery,
  ConnectedAccounts,
  ConnectQuery,
  ConsentUrl,
  PlatformParams,
  PlatformsResponse,
} from './accounts.schemas.ts';
import type { AccountsService } from './accounts.service.ts';

const tags = ['publishing'];
const security = [{ bearerAuth: [] }];
/** Connect flows start outbound calls: a per-IP cap, failing closed. */
const connectLimit = (name: string): RateLimitPolicy[] => [
  { name, limit: 30, windowSeconds: 60, by: 'ip', failMode: 'closed' },
];

/** `GET /platforms` and the `/accounts` routes, under `/api/v1/publishing`. */
export function registerAccountRoutesOn(
  app: ModuleApp,
  service: AccountsService,
  adapters: ReadonlyMap<PlatformId, PlatformAdapter>,
  returnUrl: string,
): void {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const platforms = {
    items: [...adapters.values()].map((a) => ({
      id: a.id,
      displayName: a.displayName,
      rules: {
        ...a.rules,
        mediaTypes: [...a.rules.mediaTypes],
        aspectRatio: a.rules.aspectRatio ? { ...a.rules.aspectRatio } : null,
      },
      quotas: a.quotas.map((q) => ({ ...q })),
      options: a.optionsSchema,
    })),
  };

  r.get(
    '/platforms',
    {
      config: { auth: 'required' },
      schema: {
        tags,
        security,
        summary: 'The platforms enabled here, with their content rules and quotas',
        response: { 200: PlatformsResponse },
      },
    },
    async () => platforms,
  );

  r.get(
    '/accounts/connect/:platform',
    {
      config: { auth: 'required', rateLimit: connectLimit('publishing-connect-ip') },
      schema: {
        tags,
        security,
        errorCodes: [AccountCodes.PUBLISHING_PLATFORM_NOT_ENABLED],
        summary: 'Connect an account: redirect to the platform’s consent',
        description:
          'Redirects (302) to the platform’s OAuth consent (authorization code with PKCE S256 and a state bound to the caller, single use, valid `PUBLISHING_OAUTH_STATE_TTL_S`); with `mode=json`, answers `{ url }` instead. The platform then redirects the browser to `/accounts/callback/:platform`.',
        params: PlatformParams,
        querystring: ConnectQuery,
        response: {
          200: ConsentUrl,
          302: Type.Null({ description: 'To the consent page (`Location`).' }),
        },
      },
    },
    async (request, reply) => {
      const { userId } = currentUser(request);
      const url = await service.startConnect(userId, request.params.platform);
      reply.header('cache-control', 'no-store');
      // A web app calling with fetch cannot read a redirect's Location: it asks for JSON.
      if (request.query.mode === 'json') return { url };
      reply.redirect(url, 302);
      return null;
    },
  );

  r.get(
    '/accounts/callback/:platform',
    {
      config: { auth: 'none', rateLimit: connectLimit('publishing-callback-ip') },
      schema: {
        tags,
        errorCodes: [
          AccountCodes.PUBLISHING_PLATFORM_NOT_ENABLED,
          AccountCodes.PUBLISHING_OAUTH_STATE_INVALID,
          AccountCodes.PUBLISHING_OAUTH_DENIED,
          AccountCodes.PUBLISHING_OAUTH_CODE_INVALID,
          AccountCodes.PUBLISHING_OAUTH_NO_ACCOUNT,
          AccountCodes.PUBLISHING_PLATFORM_UNAVAILABLE,
        ],
        summary: 'Finish connecting an account (the OAuth redirect URI)',
        description:
          'Reached by the browser’s redirect from the platform, so it carries no credentials: the state names the user who started the connect (stored server-side, single use). Stores the granted accounts, or updates them in place when already connected (a stored refresh token is kept when the platform sends none), and answers them; with `PUBLISHING_CONNECT_RETURN_URL` set, redirects the browser there instead (errors too).',
        params: PlatformParams,
        querystring: CallbackQuery,
        response: {
          200: ConnectedAccounts,
          302: Type.Null({
            description:
              'With `PUBLISHING_CONNECT_RETURN_URL` set: back to the web app, with `status=connected&accounts=<ids>` or `status=error&code=<code>`.',
          }),
        },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      // Bounded by the adapters' own time limits; this only caps the whole exchange.
      const signal = AbortSignal.timeout(120_000);
      const back = returnUrl === '' ? null : new URL(returnUrl);
      try {
        const accounts = await service.completeConnect(
          request.params.platform,
          request.query,
          signal,
        );
        if (!back) return { accounts };
        back.searchParams.set('status', 'connected');
        back.searchParams.set('accounts', accounts.map((a) => a.id).join(','));
      } catch (error) {
        if (!back || !(error instanceof HttpError)) throw error;
        back.searchParams.set('status', 'error');
        back.searchParams.set('code', error.code);
      }
      reply.redirect(back.toString(), 302);
      return null;
    },
  );

  r.get(
    '/accounts',
    {
      config: { auth: 'required' },
      schema: {
        tags,
        security,
        summary: 'The caller’s connected accounts, newest first',
        response: { 200: AccountList },
      },
    },
    async (request) => ({ items: await service.list(currentUser(request).userId) }),
  );

  r.get(
    '/accounts/:id',
    {
      config: { auth: 'required' },
      schema: {
        tags,
        security,
        errorCodes: [AccountCodes.PUBLISHING_ACCOUNT_NOT_FOUND],
        summary: 'One connected account',
        params: AccountParams,
        response: { 200: AccountResponse },
      },
    },
    async (request) => service.get(currentUser(request).userId, request.params.id),
  );

  r.delete(
    '/accounts/:id',
    {
      config: { auth: 'required' },
      schema: {
        tags,
        security,
        errorCodes: [AccountCodes.PUBLISHING_ACCOUNT_NOT_FOUND],
        summary: 'Disconnect an account',
        description: 'Forgets its tokens; its scheduled posts are cancelled.',
        params: AccountParams,
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      await service.remove(currentUser(request).userId, request.params.id);
      return reply.code(204).send(null);
    },
  );

  r.post(
    '/accounts/:id/reconnect',
    {
      config: { auth: 'required', rateLimit: connectLimit('publishing-connect-ip') },
      schema: {
        tags,
        security,
        errorCodes: [
          AccountCodes.PUBLISHING_ACCOUNT_NOT_FOUND,
          AccountCodes.PUBLISHING_PLATFORM_NOT_ENABLED,
        ],
        summary: 'Reconnect an account: the consent URL',
        description:
          'Answers the consent URL of the account’s platform (send the browser there); the callback updates the account in place and resumes its paused posts.',
        params: AccountParams,
        response: { 200: ConsentUrl },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      return { url: await service.reconnect(currentUser(request).userId, request.params.id) };
    },
  );
}
