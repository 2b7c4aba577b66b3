import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { RateLimitPolicy } from '../../traffic/index.ts';
import { currentUser } from '../authenticate.ts';
import type { MfaService } from './service.ts';
import { clientOf, factorOf } from '../request.ts';
import {
  Accepted,
  AUTH_BODY_LIMIT,
  BackupCode,
  Code,
  TokenPairSchema,
  type TokenPair,
} from '../schemas.ts';
import { FactorCodes } from './errors.ts';
import type { IdentityService } from '../sessions/service.ts';
import { IdentityCodes } from '../errors.ts';
import {
  BackupCodes,
  MfaStatusSchema,
  PasswordAndFactor,
  SmsCode,
  SmsEnrolBody,
  SmsEnrolled,
  TotpSetupSchema,
} from './schemas.ts';

/** Per IP, like the sign-in limit: a second factor is guessed through this route. */
const VERIFY_LIMIT: RateLimitPolicy[] = [
  { name: 'mfa-verify-ip', limit: 10, windowSeconds: 60, by: 'ip', failMode: 'closed' },
];
/** Per user, for the signed-in routes that check a password or a code. */
const CHANGE_LIMIT: RateLimitPolicy[] = [
  { name: 'mfa-change-user', limit: 10, windowSeconds: 60, by: 'user', failMode: 'closed' },
];
/** Sending SMS costs money: per IP on top of the per-number and per-account hourly limits. */
const SMS_SEND_LIMIT: RateLimitPolicy[] = [
  { name: 'mfa-sms-ip', limit: 10, windowSeconds: 3_600, by: 'ip', failMode: 'closed' },
];
const SMS_SENT_MESSAGE =
  'When the sign-in is pending and its account has an SMS number, a code was sent to it.';

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
          'Needs the password and exactly one of a current `code`, an unused `backupCode` or an `smsCode` (`POST /auth/mfa/sms/step-up`); a wrong one is 403 `MFA_REJECTED` and counts towards the lockout. The backup codes go when no other factor is left. Your other sessions end; this one stays.',
        body: PasswordAndFactor,
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const { body } = request;
      const who = currentUser(request);
      await mfa().disable(
        who.userId,
        { password: body.password, ...factorOf(body) },
        clientOf(request),
        who.sessionId,
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
          'The `mfaToken` from `POST /auth/login` with exactly one of `code`, `backupCode` and `smsCode` (sent by `POST /auth/mfa/sms/send`). A wrong or used code, an unknown, expired, spent or foreign token and a locked account are all the same 401 `INVALID_MFA`; wrong codes count towards the lockout. A passkey answers the challenge at `POST /auth/passkeys/mfa/verify`.',
        body: Type.Object(
          {
            mfaToken: Type.String({ minLength: 1, maxLength: 128 }),
            code: Type.Optional(Code),
            backupCode: Type.Optional(BackupCode),
            smsCode: Type.Optional(SmsCode),
          },
          {
            examples: [{ mfaToken: 'q3Jm0b3mR1bX8w1yq0lJk2oE4bq1mL7cJm5n2gqfQ3Q', code: '123456' }],
          },
        ),
        response: { 200: TokenPairSchema },
      },
    },
    async (request): Promise<TokenPair> => {
      const { body } = request;
      return service().verifyMfa(body.mfaToken, factorOf(body), clientOf(request));
    },
  );

  r.post(
    '/auth/mfa/sms/enrol',
    {
      bodyLimit: AUTH_BODY_LIMIT,
      config: {
        auth: 'required',
        cache: 'no-store',
        rateLimit: [...CHANGE_LIMIT, ...SMS_SEND_LIMIT],
      },
      schema: {
        ...signedIn,
        errorCodes: [
          FactorCodes.INVALID_PHONE_NUMBER,
          FactorCodes.SMS_ALREADY_ENABLED,
          FactorCodes.SMS_UNAVAILABLE,
          FactorCodes.SMS_LIMIT_REACHED,
          FactorCodes.SMS_SEND_FAILED,
        ],
        summary: 'Start enrolling a phone number for SMS codes',
        description:
          'Stores the number (normalised to E.164) as pending, replacing a pending one, and sends it a 6-digit code, valid 5 minutes; confirm with `POST /auth/mfa/sms/confirm`. 422 `INVALID_PHONE_NUMBER` (letters, too short, no country prefix, premium-rate or shared-cost); 409 `SMS_ALREADY_ENABLED`; 429 `SMS_LIMIT_REACHED` past the hourly limits per number and per account; 503 `SMS_SEND_FAILED` when the provider refused.',
        body: SmsEnrolBody,
        response: { 202: SmsEnrolled },
      },
    },
    async (request, reply) => {
      const sent = await mfa().enrolSms(
        currentUser(request).userId,
        request.body.phoneNumber,
        clientOf(request),
      );
      reply.code(202);
      return sent;
    },
  );

  r.post(
    '/auth/mfa/sms/confirm',
    {
      bodyLimit: AUTH_BODY_LIMIT,
      config: { auth: 'required', cache: 'no-store', rateLimit: CHANGE_LIMIT },
      schema: {
        ...signedIn,
        errorCodes: [
          IdentityCodes.MFA_REJECTED,
          FactorCodes.SMS_NOT_SET_UP,
          FactorCodes.SMS_ALREADY_ENABLED,
          FactorCodes.SMS_UNAVAILABLE,
        ],
        summary: 'Enable the pending phone number with the code sent to it',
        description:
          'Returns 10 backup codes when this is your first second factor (an empty list otherwise). 403 `MFA_REJECTED` for a wrong, expired or used code (counted towards the lockout); 409 `SMS_NOT_SET_UP` without a pending number.',
        body: Type.Object({ code: SmsCode }, { examples: [{ code: '123456' }] }),
        response: { 200: BackupCodes },
      },
    },
    async (request) => ({
      backupCodes: await mfa().confirmSms(
        currentUser(request).userId,
        request.body.code,
        clientOf(request),
      ),
    }),
  );

  r.post(
    '/auth/mfa/sms/send',
    {
      bodyLimit: AUTH_BODY_LIMIT,
      config: { auth: 'none', rateLimit: [...VERIFY_LIMIT, ...SMS_SEND_LIMIT] },
      schema: {
        tags,
        errorCodes: [
          FactorCodes.SMS_UNAVAILABLE,
          FactorCodes.SMS_LIMIT_REACHED,
          FactorCodes.SMS_SEND_FAILED,
        ],
        summary: 'Send an SMS code for a pending sign-in',
        description:
          'The `mfaToken` from `POST /auth/login`: when its account has an enabled number, a code valid 5 minutes is sent to it (a new one replaces the previous); answer with `POST /auth/mfa/verify` and `smsCode`. The same 202 whether or not a code was sent (unknown, expired or foreign token, no number).',
        body: Type.Object(
          { mfaToken: Type.String({ minLength: 1, maxLength: 128 }) },
          { examples: [{ mfaToken: 'q3Jm0b3mR1bX8w1yq0lJk2oE4bq1mL7cJm5n2gqfQ3Q' }] },
        ),
        response: { 202: Accepted },
      },
    },
    async (request, reply) => {
      await mfa().sendSignInCode(request.body.mfaToken, clientOf(request));
      reply.code(202);
      return { status: 'accepted' as const, message: SMS_SENT_MESSAGE };
    },
  );

  r.post(
    '/auth/mfa/sms/step-up',
    {
      config: {
        auth: 'required',
        cache: 'no-store',
        rateLimit: [...CHANGE_LIMIT, ...SMS_SEND_LIMIT],
      },
      schema: {
        ...signedIn,
        errorCodes: [
          FactorCodes.SMS_NOT_SET_UP,
          FactorCodes.SMS_UNAVAILABLE,
          FactorCodes.SMS_LIMIT_REACHED,
          FactorCodes.SMS_SEND_FAILED,
        ],
        summary: 'Send an SMS code for a change that needs a second factor',
        description:
          'Sends a code to your enabled number, for `smsCode` in the MFA changes (removing a factor, new backup codes). 409 `SMS_NOT_SET_UP` without an enabled number.',
        response: { 202: Accepted },
      },
    },
    async (request, reply) => {
      await mfa().sendStepUpCode(currentUser(request).userId);
      reply.code(202);
      return { status: 'accepted' as const, message: 'A code was sent to your phone number.' };
    },
  );

  r.post(
    '/auth/mfa/sms/disable',
    {
      bodyLimit: AUTH_BODY_LIMIT,
      config: { auth: 'required', rateLimit: CHANGE_LIMIT },
      schema: {
        ...signedIn,
        errorCodes: [FactorCodes.SMS_NOT_SET_UP, IdentityCodes.MFA_REJECTED],
        summary: 'Remove the SMS phone number',
        description:
          'An enabled number needs the password and exactly one of `code`, `backupCode` or `smsCode`; a pending one goes with any body. Your other sessions end; this one stays. 409 `SMS_NOT_SET_UP` without a number.',
        body: PasswordAndFactor,
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const { body } = request;
      const who = currentUser(request);
      await mfa().disableSms(
        who.userId,
        { password: body.password, ...factorOf(body) },
        clientOf(request),
        who.sessionId,
      );
      reply.code(204);
      return null;
    },
  );
}
