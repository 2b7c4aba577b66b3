import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import { isoCBOR } from '@simplewebauthn/server/helpers';

const b64u = (bytes: Uint8Array | Buffer | string): string =>
  Buffer.from(bytes).toString('base64url');
const sha256 = (data: Uint8Array | Buffer | string): Buffer =>
  createHash('sha256').update(data).digest();

/** Authenticator data flags (WebAuthn §6.1). */
export const FLAGS = { UP: 0x01, UV: 0x04, AT: 0x40 } as const;

/**
 * A software authenticator (a passkey in a test): an ES256 (P-256) key from node:crypto, the
 * client data JSON a browser would build, authenticator data with its flags and signature
 * counter, and a CBOR attestation object of format `none` (encoded with @simplewebauthn's own
 * `isoCBOR`, so the COSE key's integer labels are written as the library reads them).
 */
export class SoftAuthenticator {
  readonly credentialId = randomBytes(16);
  readonly #privateKey: KeyObject;
  readonly #publicKey: KeyObject;
  /** The signature counter of the next assertion (incremented before each). */
  counter = 0;
  /** The user handle the registration gave (base64url), sent back with assertions. */
  userHandle: string | undefined;

  readonly rpId: string;
  readonly origin: string;

  constructor(rpId: string, origin: string) {
    this.rpId = rpId;
    this.origin = origin;
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.#privateKey = pair.privateKey;
    this.#publicKey = pair.publicKey;
  }

  get id(): string {
    return b64u(this.credentialId);
  }

  /** The COSE_Key of the public key: kty EC2 (2), alg ES256 (-7), crv P-256 (1), x, y. */
  #coseKey(): Uint8Array {
    const jwk = this.#publicKey.export({ format: 'jwk' });
    const x = Buffer.from(jwk.x ?? '', 'base64url');
    const y = Buffer.from(jwk.y ?? '', 'base64url');
    return isoCBOR.encode(
      new Map<number, number | Uint8Array>([
        [1, 2],
        [3, -7],
        [-1, 1],
        [-2, new Uint8Array(x)],
        [-3, new Uint8Array(y)],
      ]),
    );
  }

  authenticatorData(options: {
    flags: number;
    counter: number;
    attested?: boolean;
    rpId?: string;
  }): Buffer {
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(options.counter);
    const parts = [sha256(options.rpId ?? this.rpId), Buffer.from([options.flags]), counter];
    if (options.attested === true) {
      const length = Buffer.alloc(2);
      length.writeUInt16BE(this.credentialId.length);
      parts.push(Buffer.alloc(16), length, this.credentialId, Buffer.from(this.#coseKey()));
    }
    return Buffer.concat(parts);
  }

  static clientData(type: string, challenge: string, origin: string): Buffer {
    return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }));
  }

  /** The answer of `navigator.credentials.create` to these options. */
  register(
    options: { challenge: string; user?: { id?: string } },
    overrides: { origin?: string; flags?: number; challenge?: string; rpId?: string } = {},
  ): RegistrationResponseJSON {
    this.userHandle = options.user?.id;
    const clientDataJSON = SoftAuthenticator.clientData(
      'webauthn.create',
      overrides.challenge ?? options.challenge,
      overrides.origin ?? this.origin,
    );
    const authData = this.authenticatorData({
      flags: overrides.flags ?? FLAGS.UP | FLAGS.UV | FLAGS.AT,
      counter: this.counter,
      attested: true,
      ...(overrides.rpId === undefined ? {} : { rpId: overrides.rpId }),
    });
    const attestationObject = isoCBOR.encode(
      new Map<string, unknown>([
        ['fmt', 'none'],
        ['attStmt', new Map()],
        ['authData', new Uint8Array(authData)],
      ]) as Parameters<typeof isoCBOR.encode>[0],
    );
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key',
      response: {
        clientDataJSON: b64u(clientDataJSON),
        attestationObject: b64u(attestationObject),
        transports: ['internal'],
      },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    };
  }

  /** The answer of `navigator.credentials.get`: the counter moves forward unless pinned. */
  assert(
    options: { challenge: string },
    overrides: { origin?: string; counter?: number; flags?: number; challenge?: string } = {},
  ): AuthenticationResponseJSON {
    const counter = overrides.counter ?? (this.counter += 1);
    const clientDataJSON = SoftAuthenticator.clientData(
      'webauthn.get',
      overrides.challenge ?? options.challenge,
      overrides.origin ?? this.origin,
    );
    const authData = this.authenticatorData({
      flags: overrides.flags ?? FLAGS.UP | FLAGS.UV,
      counter,
    });
    const signature = sign(
      'sha256',
      Buffer.concat([authData, sha256(clientDataJSON)]),
      this.#privateKey,
    );
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key',
      response: {
        clientDataJSON: b64u(clientDataJSON),
        authenticatorData: b64u(authData),
        signature: b64u(signature),
        ...(this.userHandle === undefined ? {} : { userHandle: this.userHandle }),
      },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    };
  }
}
