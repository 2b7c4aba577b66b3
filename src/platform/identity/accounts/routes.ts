import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { AuthLimits, type RateLimitPolicy } from '../../traffic/index.ts';
import type { AccountService } from './service.ts';
import type { ProfileRow } from './repository.ts';
import { currentUser } from '../authenticate.ts';
import type { ProfileService } from './profile.ts';
import { requireRecentAuthentication } from './step-up.ts';
import { clientOf, emailOfBody, factorOf } from '../request.ts';
import { Accepted, AUTH_BODY_LIMIT, BackupCode, Code, Password } from '../schemas.ts';
import { IdentityCodes } from '../errors.ts';
import { RecoveryCodes } from '../recovery/errors.ts';
import { MailToken, ProfileSchema } from './schemas.ts';

/** Password proofs of a signed-in user, on top of the account lockout. */
const PROOF_LIMIT: RateLimitPolicy[] = [
  { name: 'password-proof-user', limit: 10, windowSeconds: 600, by: 'user', failMode: 'closed' },
];
/** Reset tokens are 256-bit; this only keeps a client from hammering the route. */
const RESET_LIMIT: RateLimitPolicy[] = [
  { name: 'password-reset-ip', limit: 10, windowSeconds: 600, by: 'ip', failMode: 'closed' },
];
/** Profile changes (each email change sends mail). */
const PROFILE_LIMIT: RateLimitPolicy[] = [
  { name: 'profile-change-user', limit: 10, windowSeconds: 3_600, by: 'user', failMode: 'closed' },
];

const profileOf = (p: ProfileRow) => ({
  id: p.id,
  email: p.email,
  username: p.username,
  emailVerified: p.email_verified_at !== null,
  tier: p.tier,
  createdAt: p.created_at.toISOString(),
});

const RESET_MESSAGE =
  'If the address has an account, a message with a link to choose a new password is on its way.';
const EMAIL_CHANGE_MESSAGE =
  'A message is on its way to the new address: the address changes when its link is followed.';

/** Password reset and change, step-up, and the profile (`/auth/password/*`, `/users/me`). */
export async function registerAccountRoutes(
  app: FastifyInstance,
  options: {
    accounts: () => AccountService;
    profiles: () => ProfileService;
    stepUpMaxAgeS: number;
  },
): Promise<void> {
  const { accounts, profiles, stepUpMaxAgeS } = options;
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const tags = ['identity'];
  const signedIn = { tags, security: [{ bearerAuth: [] }] };
  const stepUpNote = `Needs an authentication at most ${stepUpMaxAgeS} seconds old (sign-in or \`POST /auth/reauthenticate\`); older: 403 \`REAUTHENTICATION_REQUIRED\`.`;

  r.post(
    '/auth/password/forgot',
    {
      bodyLimit: AUTH_BODY_LIMIT,
      config: { auth: 'none', rateLimit: AuthLimits.accountMail(emailOfBody) },
      schema: {
        tags,
        summary: 'Ask for a password reset link by mail',
        description:
          'Always 202 with the same body, answered before any work that depends on the address: whether it has an account cannot be told.',
        body: Type.Object({ email: Type.String({ minLength: 1, maxLength: 320 }) }),
        response: { 202: Accepted },
      },
    },
    async (request, reply) => {
      accounts().forgotPassword(request.body.email, clientOf(request));
      reply.code(202);
      return { status: 'accepted' as const, message: RESET_MESSAGE };
    },
  );

  r.post(
    '/auth/password/reset',
    {
      bodyLimit: AUTH_BODY_LIMIT,
      config: { auth: 'none', rateLimit: RESET_LIMIT },
      schema: {
        tags,
        errorCodes: [
          IdentityCodes.INVALID_RESET_TOKEN,
          IdentityCodes.WEAK_PASSWORD,
          IdentityCodes.PASSWORD_REUSED,
        ],
        summary: 'Choose a new password with the token from the reset mail',
        description:
          'Signs out every session. Unknown, expired or used token: 400 `INVALID_RESET_TOKEN`; a weak password 422 `WEAK_PASSWORD`, one of the last 5: 422 `PASSWORD_REUSED` (the token stays usable).',
        body: Type.Object({ token: MailToken, password: Password }),
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      await accounts().resetPassword(request.body, clientOf(request));
      reply.code(204);
      return null;
    },
  );

  r.post(
    '/auth/password/change',
    {
      bodyLimit: AUTH_BODY_LIMIT,
      config: { auth: 'required', rateLimit: PROOF_LIMIT },
      schema: {
        ...signedIn,
        errorCodes: [
          IdentityCodes.INVALID_CREDENTIALS,
          IdentityCodes.WEAK_PASSWORD,
          IdentityCodes.PASSWORD_REUSED,
        ],
        summary: 'Change your password',
        description:
          'Needs the current password (wrong: 401 `INVALID_CREDENTIALS`, counted towards the lockout). Signs out your other sessions; this one stays.',
        body: Type.Object({ currentPassword: Password, newPassword: Password }),
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const { userId, sessionId } = currentUser(request);
      await accounts().changePassword({ userId, sessionId }, request.body, clientOf(request));
      reply.code(204);
      return null;
    },
  );

  r.post(
    '/auth/reauthenticate',
    {
      bodyLimit: AUTH_BODY_LIMIT,
      config: { auth: 'required', rateLimit: PROOF_LIMIT },
      schema: {
        ...signedIn,
        errorCodes: [IdentityCodes.INVALID_CREDENTIALS],
        summary: 'Confirm your password again (step-up)',
        description: `Marks this session as authenticated now, for changes that need a recent authentication (${stepUpMaxAgeS} seconds). With MFA on, \`code\` or \`backupCode\` is needed too. A wrong password or code is 401 \`INVALID_CREDENTIALS\` and counts towards the lockout.`,
        body: Type.Object({
          password: Password,
          code: Type.Optional(Code),
          backupCode: Type.Optional(BackupCode),
        }),
        response: {
          200: Type.Object({
            authenticatedAt: Type.String({ format: 'date-time' }),
            maxAge: Type.Integer({ description: 'Seconds the step-up stays valid.' }),
          }),
        },
      },
    },
    async (request) => {
      const { userId, sessionId } = currentUser(request);
      const { body } = request;
      const factor =
        body.code === undefined && body.backupCode === undefined ? undefined : factorOf(body);
      const at = await accounts().reauthenticate(
        { userId, sessionId },
        { password: body.password, ...(factor ? { factor } : {}) },
        clientOf(request),
      );
      return { authenticatedAt: at.toISOString(), maxAge: stepUpMaxAgeS };
    },
  );

  r.post(
    '/auth/email-change/confirm',
    {
      bodyLimit: AUTH_BODY_LIMIT,
      config: { auth: 'none' },
      schema: {
        tags,
        errorCodes: [IdentityCodes.INVALID_EMAIL_TOKEN, IdentityCodes.EMAIL_TAKEN],
        summary: 'Switch to the new address with the token from the confirmation mail',
        description:
          'Unknown, expired or used token: 400 `INVALID_EMAIL_TOKEN`. The old address is told of the change.',
        body: Type.Object({ token: MailToken }),
        response: { 200: Type.Object({ changed: Type.Literal(true) }) },
      },
    },
    async (request) => {
      await profiles().confirmEmailChange(request.body.token, clientOf(request));
      return { changed: true as const };
    },
  );

  r.get(
    '/users/me',
    {
      config: { auth: 'required', cache: 'private' },
      schema: { ...signedIn, summary: 'Your account', response: { 200: ProfileSchema } },
    },
    async (request) => profileOf(await profiles().profile(currentUser(request).userId)),
  );

  r.patch(
    '/users/me',
    {
      bodyLimit: AUTH_BODY_LIMIT,
      config: { auth: 'required', rateLimit: PROFILE_LIMIT },
      schema: {
        ...signedIn,
        errorCodes: [
          IdentityCodes.INVALID_EMAIL,
          IdentityCodes.INVALID_USERNAME,
          IdentityCodes.USERNAME_TAKEN,
          IdentityCodes.REAUTHENTICATION_REQUIRED,
        ],
        summary: 'Change your user name or address',
        description: `A user name is checked like at registration (taken: 409 \`USERNAME_TAKEN\`). An address change answers 202 and mails a link to the new address, which becomes yours only when it is followed (an address that already has an account gets a notice instead, and the answer is the same). ${stepUpNote} (address changes only)`,
        body: Type.Object(
          {
            username: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
            email: Type.Optional(Type.String({ minLength: 3, maxLength: 320 })),
          },
          { minProperties: 1 },
        ),
        response: {
          200: ProfileSchema,
          202: Type.Object({
            status: Type.Literal('accepted'),
            message: Type.String(),
            user: ProfileSchema,
          }),
        },
      },
    },
    async (request, reply) => {
      const { body } = request;
      if (body.email !== undefined) requireRecentAuthentication(request, stepUpMaxAgeS);
      const { userId, sessionId } = currentUser(request);
      const { profile, emailChange } = await profiles().updateProfile(
        { userId, sessionId },
        body,
        clientOf(request),
      );
      if (!emailChange) return profileOf(profile);
      reply.code(202);
      return {
        status: 'accepted' as const,
        message: EMAIL_CHANGE_MESSAGE,
        user: profileOf(profile),
      };
    },
  );

  r.delete(
    '/users/me',
    {
      config: { auth: 'required' },
      schema: {
        ...signedIn,
        errorCodes: [IdentityCodes.REAUTHENTICATION_REQUIRED, RecoveryCodes.LAST_ADMIN],
        summary: 'Delete your account',
        description: `Signs out every session at once; the account is purged for good after the retention period. The last active holder of \`admin\` cannot: 409 \`LAST_ADMIN\`. ${stepUpNote}`,
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      requireRecentAuthentication(request, stepUpMaxAgeS);
      const { userId, sessionId } = currentUser(request);
      await profiles().deleteAccount({ userId, sessionId }, clientOf(request));
      reply.code(204);
      return null;
    },
  );
}
