import { Type } from 'typebox';

/** base64url without padding, as WebAuthn JSON carries binary fields. */
const B64 = (description: string, maxLength = 4_096) =>
  Type.String({ pattern: '^[A-Za-z0-9_-]*$', minLength: 1, maxLength, description });

const EXAMPLE_ID = 'q3Jm0b3mR1bX8w1yq0lJk2oE4bq1mL7cJm5n2gqfQ3Q';
const EXAMPLE_CLIENT_DATA = 'eyJ0eXBlIjoid2ViYXV0aG4uZ2V0In0';

export const PasskeySchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  createdAt: Type.String({ format: 'date-time' }),
  lastUsedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

export const PasskeyName = Type.String({ minLength: 1, maxLength: 64, pattern: '\\S' });

export const CeremonySchema = Type.Object(
  {
    ceremonyId: Type.String({ format: 'uuid', description: 'Send it back with the answer.' }),
    options: Type.Record(Type.String(), Type.Unknown(), {
      description:
        'The WebAuthn options (JSON), for `navigator.credentials.create` or `.get` (`PublicKeyCredentialCreationOptionsJSON` / `PublicKeyCredentialRequestOptionsJSON`).',
    }),
  },
  {
    examples: [
      {
        ceremonyId: '0190a5c4-7b7e-7000-8000-0000000000d1',
        options: { challenge: EXAMPLE_ID, rpId: 'app.example.com', userVerification: 'required' },
      },
    ],
  },
);

export const RegistrationResponse = Type.Object({
  id: B64('The credential id.', 1_024),
  rawId: B64('The credential id.', 1_024),
  type: Type.Literal('public-key'),
  response: Type.Object({
    clientDataJSON: B64('base64url of the client data JSON.'),
    attestationObject: B64('base64url of the CBOR attestation object.', 8_192),
    transports: Type.Optional(Type.Array(Type.String({ maxLength: 32 }), { maxItems: 8 })),
  }),
  clientExtensionResults: Type.Record(Type.String(), Type.Unknown()),
  authenticatorAttachment: Type.Optional(Type.String({ maxLength: 32 })),
});

export const AuthenticationResponse = Type.Object({
  id: B64('The credential id.', 1_024),
  rawId: B64('The credential id.', 1_024),
  type: Type.Literal('public-key'),
  response: Type.Object({
    clientDataJSON: B64('base64url of the client data JSON.'),
    authenticatorData: B64('base64url of the authenticator data.'),
    signature: B64('base64url of the signature.'),
    userHandle: Type.Optional(B64('base64url of the user handle.', 128)),
  }),
  clientExtensionResults: Type.Record(Type.String(), Type.Unknown()),
  authenticatorAttachment: Type.Optional(Type.String({ maxLength: 32 })),
});

const exampleAssertion = {
  id: EXAMPLE_ID,
  rawId: EXAMPLE_ID,
  type: 'public-key',
  response: {
    clientDataJSON: EXAMPLE_CLIENT_DATA,
    authenticatorData: 'SZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2MFAAAAAQ',
    signature: 'MEUCIQDexample',
  },
  clientExtensionResults: {},
};

export const RegisterBody = Type.Object(
  {
    ceremonyId: Type.String({ format: 'uuid' }),
    name: Type.Optional(PasskeyName),
    response: RegistrationResponse,
  },
  {
    examples: [
      {
        ceremonyId: '0190a5c4-7b7e-7000-8000-0000000000d1',
        name: 'Laptop',
        response: {
          id: EXAMPLE_ID,
          rawId: EXAMPLE_ID,
          type: 'public-key',
          response: { clientDataJSON: EXAMPLE_CLIENT_DATA, attestationObject: 'o2NmbXRkbm9uZQ' },
          clientExtensionResults: {},
        },
      },
    ],
  },
);

export const SignInBody = Type.Object(
  { ceremonyId: Type.String({ format: 'uuid' }), response: AuthenticationResponse },
  {
    examples: [{ ceremonyId: '0190a5c4-7b7e-7000-8000-0000000000d1', response: exampleAssertion }],
  },
);

export const MfaOptionsBody = Type.Object(
  { mfaToken: Type.String({ minLength: 1, maxLength: 128 }) },
  { examples: [{ mfaToken: EXAMPLE_ID }] },
);

export const MfaVerifyBody = Type.Object(
  {
    mfaToken: Type.String({ minLength: 1, maxLength: 128 }),
    ceremonyId: Type.String({ format: 'uuid' }),
    response: AuthenticationResponse,
  },
  {
    examples: [
      {
        mfaToken: EXAMPLE_ID,
        ceremonyId: '0190a5c4-7b7e-7000-8000-0000000000d1',
        response: exampleAssertion,
      },
    ],
  },
);
