import { Type } from 'typebox';

/** A form-posted callback is a few parameters and an ID token at most. */
export const FORM_BODY_LIMIT = 16_384;

// Any id that is not configured, well-formed or not, is the same 404.
export const ProviderParams = Type.Object({
  provider: Type.String({ minLength: 1, maxLength: 64 }),
});

// Every parameter is optional here: a missing or odd one is the one OIDC_LOGIN_FAILED, not a
// validation error. Unknown ones (Google's `authuser`, Keycloak's `session_state`) are dropped.
export const CallbackQuerySchema = Type.Object({
  code: Type.Optional(Type.String({ maxLength: 2_048 })),
  state: Type.Optional(Type.String({ maxLength: 512 })),
  iss: Type.Optional(Type.String({ maxLength: 2_048 })),
  error: Type.Optional(Type.String({ maxLength: 256 })),
  error_description: Type.Optional(Type.String({ maxLength: 2_048 })),
  error_uri: Type.Optional(Type.String({ maxLength: 2_048 })),
});

export const IdentitySchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  provider: Type.String(),
  email: Type.Union([Type.String(), Type.Null()], {
    description: 'The address the provider last asserted.',
  }),
  linkedAt: Type.String({ format: 'date-time' }),
});
