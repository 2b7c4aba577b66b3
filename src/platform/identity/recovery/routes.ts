import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { HttpCodes } from '../../http/index.ts';
import { AuthLimits, type RateLimitPolicy } from '../../traffic/index.ts';
import { requireRecentAuthentication } from '../accounts/step-up.ts';
import { MailToken } from '../accounts/schemas.ts';
import { IdParams } from '../admin/schemas.ts';
import { currentUser } from '../authenticate.ts';
import { IdentityCodes } from '../errors.ts';
import { PlatformPermissions as P } from '../rbac/permissions.ts';
import { normalizeIdentifier } from '../normalize.ts';
import { clientOf } from '../request.ts';
import { Accepted, AUTH_BODY_LIMIT } from '../schemas.ts';
import { RecoveryCodes } from './errors.ts';
import type { RecoveryService } from './service.ts';

/** Links are 256-bit; this only keeps a client from hammering the routes. */
const LINK_LIMIT: RateLimitPolicy[] = [
  { name: 'recovery-link-ip', limit: 10, windowSeconds: 600, by: 'ip', failMode: 'closed' },
];

/** The `login` of a body, normalised, so every spelling of an account shares one bucket. */
function loginOfBody(request: FastifyRequest): string | undefined {
  const body: unknown = request.body;
  if (typeof body !== 'object' || body === null || !('login' in body)) return undefined;
  return typeof body.login === 'string' ? normalizeIdentifier(body.login) : undefined;
}

const START_MESSAGE =
  'If the account can be recovered this way, a message with a link is on its way to its address.';

const Login = Type.String({
  minLength: 1,
  maxLength: 320,
  description: 'The address or user name of the account.',
  examples: ['ada@example.com'],
});
const LinkToken = Type.Unsafe<string>({
  ...MailToken,
  examples: ['c2FtcGxlLXRva2VuLTAxMjM0NTY3ODktYWJjZGVmZ2g'],
});

const StatusSchema = Type.Object({
  state: Type.Union([Type.Literal('none'), Type.Literal('requested'), Type.Literal('waiting')], {
    description:
      '`requested`: the mailed link was not followed yet; `waiting`: the second factors are removed at `completesAt` unless cancelled.',
  }),
  completesAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  reenrolmentRequired: Type.Boolean({
    description:
      'A recovery or an administrator removed your second factors and you have not set one up since.',
  }),
});

/** Lost-device recovery (`/auth/recovery/...`), the admin MFA reset, the address-change report. */
export async function registerRecoveryRoutes(
  app: FastifyInstance,
  options: { service: () => RecoveryService; stepUpMaxAgeS: number; delayS: number },
): Promise<void> {
  const { service, stepUpMaxAgeS, delayS } = options;
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const tags = ['identity'];
  const signedIn = { tags, security: [{ bearerAuth: [] }] };

  r.post(
    '/auth/recovery/start',
    {
      bodyLimit: AUTH_BODY_LIMIT,
      config: { auth: 'none', rateLimit: AuthLimits.accountMail(loginOfBody) },
      schema: {
        tags,
        summary: 'Lost your second factor? Ask for a recovery link by mail',
        description: `Always 202 with the same body, answered before any work that depends on the account. Only an account with a verified address and a second factor is mailed a link; following it starts a waiting period (${delayS} seconds, \`AUTH_MFA_RECOVERY_DELAY\`) after which the second factors are removed. Asking again while a link is out mails a new one (the earlier one dies); while the waiting period runs, nothing changes. Limited per IP and per account.`,
        body: Type.Object({ login: Login }, { examples: [{ login: 'ada@example.com' }] }),
        response: { 202: Accepted },
      },
    },
    async (request, reply) => {
      service().start(request.body.login, clientOf(request));
      reply.code(202);
      return { status: 'accepted' as const, message: START_MESSAGE };
    },
  );

  r.post(
    '/auth/recovery/confirm',
    {
      bodyLimit: AUTH_BODY_LIMIT,
      config: { auth: 'none', rateLimit: LINK_LIMIT },
      schema: {
        tags,
        errorCodes: [RecoveryCodes.INVALID_RECOVERY_TOKEN],
        summary: 'Start the waiting period with the token from the recovery mail',
        description:
          'The owner is mailed when the second factors will be removed, with a link that cancels. Unknown, expired, used or cancelled token: 400 `INVALID_RECOVERY_TOKEN`.',
        body: Type.Object({ token: LinkToken }),
        response: {
          200: Type.Object({ completesAt: Type.String({ format: 'date-time' }) }),
        },
      },
    },
    async (request) => {
      const at = await service().confirm(request.body.token, clientOf(request));
      return { completesAt: at.toISOString() };
    },
  );

  r.post(
    '/auth/recovery/cancel',
    {
      bodyLimit: AUTH_BODY_LIMIT,
      config: { auth: 'none', rateLimit: LINK_LIMIT },
      schema: {
        tags,
        errorCodes: [RecoveryCodes.INVALID_RECOVERY_TOKEN],
        summary: 'Cancel a recovery with the token of its cancel link',
        description:
          'Unknown token, or a recovery already cancelled or completed: 400 `INVALID_RECOVERY_TOKEN`.',
        body: Type.Object({ token: LinkToken }),
        response: { 200: Type.Object({ cancelled: Type.Literal(true) }) },
      },
    },
    async (request) => {
      await service().cancelWithToken(request.body.token, clientOf(request));
      return { cancelled: true as const };
    },
  );

  r.get(
    '/auth/recovery',
    {
      config: { auth: 'required', cache: 'private' },
      schema: {
        ...signedIn,
        summary: 'Your recovery, and whether you must set up a second factor again',
        response: { 200: StatusSchema },
      },
    },
    async (request) => {
      const status = await service().status(currentUser(request).userId);
      return { ...status, completesAt: status.completesAt?.toISOString() ?? null };
    },
  );

  r.delete(
    '/auth/recovery',
    {
      config: { auth: 'required' },
      schema: {
        ...signedIn,
        errorCodes: [RecoveryCodes.RECOVERY_NOT_FOUND],
        summary: 'Cancel your recovery',
        description: 'Cancels your open recovery; none: 404 `RECOVERY_NOT_FOUND`.',
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      await service().cancelMine(currentUser(request).userId, clientOf(request));
      reply.code(204);
      return null;
    },
  );

  r.post(
    '/admin/users/:id/mfa/reset',
    {
      config: { permission: P.USERS_ADMIN },
      schema: {
        tags: ['admin'],
        security: [{ bearerAuth: [] }],
        errorCodes: [
          IdentityCodes.USER_NOT_FOUND,
          IdentityCodes.REAUTHENTICATION_REQUIRED,
          RecoveryCodes.CANNOT_RESET_OWN_MFA,
          HttpCodes.FORBIDDEN,
        ],
        summary: "Remove an account's second factors (lost device)",
        description: `Removes every second factor (authenticator, backup codes, SMS, passkeys), ends every session of the account and mails its owner; it sets a factor up again after signing in. Audited. Needs \`users:admin\` and an authentication at most ${stepUpMaxAgeS} seconds old (else 403 \`REAUTHENTICATION_REQUIRED\`); your own account: 409 \`CANNOT_RESET_OWN_MFA\`.`,
        params: IdParams,
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      requireRecentAuthentication(request, stepUpMaxAgeS);
      const { userId } = currentUser(request);
      const { id } = request.params;
      const client = clientOf(request);
      await service().adminReset(
        { userId, ip: client.ip, requestId: client.requestId },
        id,
        client,
      );
      reply.code(204);
      return null;
    },
  );

  r.post(
    '/auth/email-change/report',
    {
      bodyLimit: AUTH_BODY_LIMIT,
      config: { auth: 'none', rateLimit: LINK_LIMIT },
      schema: {
        tags,
        errorCodes: [RecoveryCodes.INVALID_REPORT_TOKEN],
        summary: 'Report an address change you did not make (link mailed to the old address)',
        description:
          'Locks the account, signs out every session, voids every mailed link, and gives the account its old address back (unless another account took it since: `restored` false). Then choose a new password with `POST /auth/password/forgot` at the old address, which unlocks the account. Unknown, expired or used token: 400 `INVALID_REPORT_TOKEN`.',
        body: Type.Object({ token: LinkToken }),
        response: {
          200: Type.Object({ reported: Type.Literal(true), restored: Type.Boolean() }),
        },
      },
    },
    async (request) => {
      const { restored } = await service().reportEmailChange(request.body.token, clientOf(request));
      return { reported: true as const, restored };
    },
  );
}
