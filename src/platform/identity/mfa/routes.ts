import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { RateLimitPolicy } from '../../traffic/index.ts';
import { currentUser } from '../authenticate.ts';
import type { MfaService } from './service.ts';
import { clientOf, factorOf } from '../request.ts';
import { AUTH_BODY_LIMIT, BackupCode, Code, TokenPairSchema, type TokenPair } from '../schemas.ts';
import type { IdentityService } from '../sessions/service.ts';
import { IdentityCodes } from '../errors.ts';
import { BackupCodes, MfaStatusSchema, PasswordAndFactor, TotpSetupSchema } from './schemas.ts';

/** Per IP, like the sign-in limit: a second factor is guessed through this route. */
const VERIFY_LIMIT: RateLimitPolicy[] = [
  { name: 'mfa-verify-ip', limit: 10, windowSeconds: 60, by: 'ip', failMode: 'closed' },
];
/** Per user, for the signed-in routes that check a password or a code. */
const CHANGE_LIMIT: RateLimitPolicy[] = [
  { name: 'mfa-change-user', limit: 10, windowSeconds: 60, by: 'user', failMode: 'closed' },
];

/** The MFA API under `/api/v1/auth/mfa`. */
export async function registerMfaRoutes(
  app: FastifyInstance,
  options: { service: () => IdentityService; mfa: () => MfaService },
): Promise<void> {
  const { service, mfa } = options;
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const tags = ['identity'];
  const signedIn = { tags, security: [{ bearerAuth: [] }] };

  r.get(
    '/auth/mfa',
    {
      config: { auth: 'required', cache: 'private' },
      schema: {
        ...signedIn,
        summary: 'Your second factors',
        response: {
          200: MfaStatusSchema,
        },
      },
    },
    async (request) => mfa().status(currentUser(request).userId),
  );

  r.post(
    '/auth/mfa/totp/setup',
    {
      config: { auth: 'required', cache: 'no-store', rateLimit: CHANGE_LIMIT },
      schema: {
        ...signedIn,
        errorCodes: [IdentityCodes.MFA_ALREADY_ENABLED],
        summary: 'Start enrolling an authenticator app (TOTP)',
        description:
          'A new secret, pending until `POST /auth/mfa/totp/enable` with a code from it; calling again replaces a pending one. 409 `MFA_ALREADY_ENABLED` while one is enabled.',
        response: {
          200: TotpSetupSchema,
        },
      },
    },
    async (request) => mfa().setup(currentUser(request).userId, clientOf(request)),
  );

  r.post(
    '/auth/mfa/totp/enable',
    {
      bodyLimit: AUTH_BODY_LIMIT,
      config: { auth: 'required', cache: 'no-store', rateLimit: CHANGE_LIMIT },
      schema: {
        ...signedIn,
        errorCodes: [
          IdentityCodes.MFA_NOT_SET_UP,
          IdentityCodes.MFA_ALREADY_ENABLED,
          IdentityCodes.MFA_REJECTED,
        ],
        summary: 'Enable the pending authenticator with a first code',
        description:
          'Needs a current code from the authenticator app holding the secret of the latest `POST /auth/mfa/totp/setup` (no password). Returns 10 backup codes, shown this once. 409 `MFA_NOT_SET_UP` without a pending setup; 403 `MFA_REJECTED` when the code does not match that secret now (wrong, from an older setup, or already used); it does not count towards the lockout.',
        body: Type.Object({ code: Code }),
        response: { 200: BackupCodes },
      },
    },
    async (request) => ({
      backupCodes: await mfa().enable(
        currentUser(request).userId,
        request.body.code,
        clientOf(request),
      ),
    }),
  );

  r.post(
    '/auth/mfa/totp/disable',
    {
      bodyLimit: AUTH_BODY_LIMIT,
      config: { auth: 'required', rateLimit: CHANGE_LIMIT },
      schema: {
        ...signedIn,
        errorCodes: [IdentityCodes.MFA_NOT_SET_UP, IdentityCodes.MFA_REJECTED],
        summary: 'Remove the authenticator and the backup codes',
        description:
          'Needs the password and exactly one of a current `code` or an unused `backupCode`; a wrong one is 403 `MFA_REJECTED` and counts towards the lockout.',
        body: PasswordAndFactor,
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const { body } = request;
      await mfa().disable(
        currentUser(request).userId,
        { password: body.password, ...factorOf(body) },
        clientOf(request),
      );
      reply.code(204);
      return null;
    },
  );

  r.post(
    '/auth/mfa/backup-codes',
    {
      bodyLimit: AUTH_BODY_LIMIT,
      config: { auth: 'required', cache: 'no-store', rateLimit: CHANGE_LIMIT },
      schema: {
        ...signedIn,
        errorCodes: [IdentityCodes.MFA_NOT_SET_UP, IdentityCodes.MFA_REJECTED],
        summary: 'Replace the backup codes',
        description:
          'Ten new codes, shown this once; the old ones stop working. Needs the password and exactly one of a current `code` or an unused `backupCode`.',
        body: PasswordAndFactor,
        response: { 200: BackupCodes },
      },
    },
    async (request) => {
      const { body } = request;
      return {
        backupCodes: await mfa().regenerateBackupCodes(
          currentUser(request).userId,
          { password: body.password, ...factorOf(body) },
          clientOf(request),
        ),
      };
    },
  );

  r.post(
    '/auth/mfa/verify',
    {
      bodyLimit: AUTH_BODY_LIMIT,
      config: { auth: 'none', rateLimit: VERIFY_LIMIT },
      schema: {
        tags,
        errorCodes: [IdentityCodes.INVALID_MFA],
        summary: 'Finish a sign-in with the second factor',
        description:
          'The `mfaToken` from `POST /auth/login` with exactly one of `code` and `backupCode`. A wrong or used code, an unknown, expired, spent or foreign token and a locked account are all the same 401 `INVALID_MFA`; wrong codes count towards the lockout.',
        body: Type.Object({
          mfaToken: Type.String({ minLength: 1, maxLength: 128 }),
          code: Type.Optional(Code),
          backupCode: Type.Optional(BackupCode),
        }),
        response: { 200: TokenPairSchema },
      },
    },
    async (request): Promise<TokenPair> => {
      const { body } = request;
      return service().verifyMfa(body.mfaToken, factorOf(body), clientOf(request));
    },
  );
}
