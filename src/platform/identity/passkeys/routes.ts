import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { RegistrationResponseJSON, AuthenticationResponseJSON } from '@simplewebauthn/server';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { RateLimitPolicy } from '../../traffic/index.ts';
import { requireRecentAuthentication } from '../accounts/step-up.ts';
import { currentUser } from '../authenticate.ts';
import { IdentityCodes } from '../errors.ts';
import { FactorCodes } from '../mfa/errors.ts';
import { clientOf } from '../request.ts';
import { AUTH_BODY_LIMIT, TokenPairSchema, type TokenPair } from '../schemas.ts';
import type { IdentityService } from '../sessions/service.ts';
import {
  CeremonySchema,
  MfaOptionsBody,
  MfaVerifyBody,
  PasskeyName,
  PasskeySchema,
  RegisterBody,
  SignInBody,
} from './schemas.ts';
import type { PasskeyService } from './service.ts';

/** Like the sign-in limits: per IP for the anonymous ceremonies. */
const SIGN_IN_LIMIT: RateLimitPolicy[] = [
  { name: 'passkey-ip', limit: 10, windowSeconds: 60, by: 'ip', failMode: 'closed' },
];
const CHANGE_LIMIT: RateLimitPolicy[] = [
  { name: 'passkey-change-user', limit: 10, windowSeconds: 60, by: 'user', failMode: 'closed' },
];
const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) });

/** The passkey API under `/api/v1/auth/passkeys`. */
export async function registerPasskeyRoutes(
  app: FastifyInstance,
  options: {
    service: () => IdentityService;
    passkeys: () => PasskeyService;
    stepUpMaxAgeS: number;
  },
): Promise<void> {
  const { service, passkeys } = options;
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const tags = ['identity'];
  const signedIn = { tags, security: [{ bearerAuth: [] }] };

  r.get(
    '/auth/passkeys',
    {
      config: { auth: 'required', cache: 'private' },
      schema: {
        ...signedIn,
        summary: 'Your passkeys',
        response: { 200: Type.Object({ items: Type.Array(PasskeySchema) }) },
      },
    },
    async (request) => ({ items: await passkeys().list(currentUser(request).userId) }),
  );

  r.post(
    '/auth/passkeys/register/options',
    {
      config: { auth: 'required', cache: 'no-store', rateLimit: CHANGE_LIMIT },
      schema: {
        ...signedIn,
        summary: 'Start registering a passkey',
        description:
          'Options for `navigator.credentials.create` (attestation `none`, user verification required, a discoverable credential; your passkeys excluded) and the ceremony id to answer with, valid `AUTH_WEBAUTHN_CHALLENGE_TTL` (5 minutes), once.',
        response: { 200: CeremonySchema },
      },
    },
    async (request) => passkeys().registrationOptions(currentUser(request).userId),
  );

  r.post(
    '/auth/passkeys/register/verify',
    {
      bodyLimit: AUTH_BODY_LIMIT,
      config: { auth: 'required', cache: 'no-store', rateLimit: CHANGE_LIMIT },
      schema: {
        ...signedIn,
        errorCodes: [FactorCodes.PASSKEY_REJECTED],
        summary: 'Finish registering a passkey',
        description:
          "The ceremony id and the authenticator's answer (`RegistrationResponseJSON`). 400 `PASSKEY_REJECTED` for an unknown, expired or used ceremony, another user's, a wrong challenge, origin or RP id, no user verification, or a malformed answer. 10 backup codes when this is your first second factor (an empty list otherwise).",
        body: RegisterBody,
        response: {
          201: Type.Object({
            passkey: PasskeySchema,
            backupCodes: Type.Array(Type.String()),
          }),
        },
      },
    },
    async (request, reply) => {
      const { body } = request;
      const out = await passkeys().register(
        currentUser(request).userId,
        {
          ceremonyId: body.ceremonyId,
          ...(body.name === undefined ? {} : { name: body.name }),
          response: body.response as RegistrationResponseJSON,
        },
        clientOf(request),
      );
      reply.code(201);
      return out;
    },
  );

  r.post(
    '/auth/passkeys/login/options',
    {
      config: { auth: 'none', rateLimit: SIGN_IN_LIMIT },
      schema: {
        tags,
        summary: 'Start a passwordless sign-in with a passkey',
        description:
          'Options for `navigator.credentials.get` (discoverable credentials, user verification required) and the ceremony id.',
        response: { 200: CeremonySchema },
      },
    },
    async () => passkeys().authenticationOptions(null),
  );

  r.post(
    '/auth/passkeys/login/verify',
    {
      bodyLimit: AUTH_BODY_LIMIT,
      config: { auth: 'none', rateLimit: SIGN_IN_LIMIT },
      schema: {
        tags,
        errorCodes: [FactorCodes.PASSKEY_SIGN_IN_FAILED],
        summary: 'Finish a passwordless sign-in',
        description:
          'The ceremony id and the assertion (`AuthenticationResponseJSON`): the token pair of a new session, as a password sign-in gives. An unknown credential, a wrong challenge or origin, a replayed assertion, a counter gone back (the passkey is then flagged and refused from then on), a bad signature and a locked account are all the same 401 `PASSKEY_SIGN_IN_FAILED`; a failed assertion of a known passkey counts towards the lockout.',
        body: SignInBody,
        response: { 200: TokenPairSchema },
      },
    },
    async (request): Promise<TokenPair> =>
      passkeys().signIn(
        {
          ceremonyId: request.body.ceremonyId,
          response: request.body.response as AuthenticationResponseJSON,
        },
        clientOf(request),
        service(),
      ),
  );

  r.post(
    '/auth/passkeys/mfa/options',
    {
      bodyLimit: AUTH_BODY_LIMIT,
      config: { auth: 'none', rateLimit: SIGN_IN_LIMIT },
      schema: {
        tags,
        summary: 'Start answering a sign-in challenge with a passkey',
        description:
          "The `mfaToken` from `POST /auth/login`: options listing the account's passkeys and the ceremony id. An unknown token gets options too (its ceremony never passes).",
        body: MfaOptionsBody,
        response: { 200: CeremonySchema },
      },
    },
    async (request) => passkeys().authenticationOptions(request.body.mfaToken),
  );

  r.post(
    '/auth/passkeys/mfa/verify',
    {
      bodyLimit: AUTH_BODY_LIMIT,
      config: { auth: 'none', rateLimit: SIGN_IN_LIMIT },
      schema: {
        tags,
        errorCodes: [IdentityCodes.INVALID_MFA],
        summary: 'Finish a sign-in with a passkey as the second factor',
        description:
          'The `mfaToken`, the ceremony id and the assertion. Every refusal is the 401 `INVALID_MFA` of `POST /auth/mfa/verify`, and counts towards the lockout.',
        body: MfaVerifyBody,
        response: { 200: TokenPairSchema },
      },
    },
    async (request): Promise<TokenPair> =>
      service().verifyMfa(
        request.body.mfaToken,
        {
          passkey: {
            ceremonyId: request.body.ceremonyId,
            response: request.body.response as AuthenticationResponseJSON,
          },
        },
        clientOf(request),
      ),
  );

  r.patch(
    '/auth/passkeys/:id',
    {
      bodyLimit: AUTH_BODY_LIMIT,
      config: { auth: 'required', rateLimit: CHANGE_LIMIT },
      schema: {
        ...signedIn,
        errorCodes: [FactorCodes.PASSKEY_NOT_FOUND],
        summary: 'Rename a passkey',
        params: IdParams,
        body: Type.Object({ name: PasskeyName }, { examples: [{ name: 'Work laptop' }] }),
        response: { 200: PasskeySchema },
      },
    },
    async (request) =>
      passkeys().rename(currentUser(request).userId, request.params.id, request.body.name),
  );

  r.delete(
    '/auth/passkeys/:id',
    {
      config: { auth: 'required', rateLimit: CHANGE_LIMIT },
      schema: {
        ...signedIn,
        errorCodes: [IdentityCodes.REAUTHENTICATION_REQUIRED, FactorCodes.PASSKEY_NOT_FOUND],
        summary: 'Remove a passkey',
        description:
          'Needs a recent authentication (403 `REAUTHENTICATION_REQUIRED`: `POST /auth/reauthenticate`, then retry). Your other sessions end; this one stays. 404 `PASSKEY_NOT_FOUND` for an id that is not one of yours.',
        params: IdParams,
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      requireRecentAuthentication(request, options.stepUpMaxAgeS);
      const who = currentUser(request);
      await passkeys().remove(who.userId, request.params.id, clientOf(request), who.sessionId);
      reply.code(204);
      return null;
    },
  );
}
