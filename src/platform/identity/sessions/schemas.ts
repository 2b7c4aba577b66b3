import { Type } from 'typebox';

/** A token pair, whose refresh token may travel in a cookie instead of the body. */
export const SignInTokenPairSchema = Type.Object({
  accessToken: Type.String(),
  tokenType: Type.Literal('Bearer'),
  expiresIn: Type.Integer({ description: 'Seconds the access token is valid.' }),
  refreshToken: Type.Optional(
    Type.String({
      description:
        'Absent in cookie mode (`X-Token-Transport: cookie`): the token is in the HttpOnly `__Secure-gw_refresh` cookie instead.',
    }),
  ),
  refreshExpiresIn: Type.Integer({ description: 'Seconds the refresh token is valid.' }),
  sessionId: Type.String({ format: 'uuid' }),
});
export const DeviceSchema = Type.Union(
  [
    Type.Object({
      browser: Type.Union([Type.String(), Type.Null()]),
      os: Type.Union([Type.String(), Type.Null()]),
      platform: Type.Union([Type.String(), Type.Null()]),
    }),
    Type.Null(),
  ],
  { description: 'The user agent parsed (bowser): browser, OS, platform; null without one.' },
);
export const SessionSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  current: Type.Boolean({ description: 'The session of this request.' }),
  userAgent: Type.Union([Type.String(), Type.Null()]),
  device: DeviceSchema,
  ip: Type.Union([Type.String(), Type.Null()]),
  rememberMe: Type.Boolean(),
  createdAt: Type.String({ format: 'date-time' }),
  lastUsedAt: Type.String({ format: 'date-time', description: 'Sign-in or last refresh.' }),
  expiresAt: Type.String({ format: 'date-time', description: 'Absolute end of the session.' }),
});
export const LoginEventSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  outcome: Type.Union([
    Type.Literal('success'),
    Type.Literal('failure'),
    Type.Literal('locked'),
    Type.Literal('unverified'),
    Type.Literal('refresh-reuse'),
  ]),
  ip: Type.Union([Type.String(), Type.Null()]),
  userAgent: Type.Union([Type.String(), Type.Null()]),
  device: DeviceSchema,
  sessionId: Type.Union([Type.String({ format: 'uuid' }), Type.Null()]),
  at: Type.String({ format: 'date-time' }),
});
