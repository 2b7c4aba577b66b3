import {
  SignJWT,
  calculateJwkThumbprint,
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  importPKCS8,
  jwtVerify,
  type JWK,
  type JWTPayload,
} from 'jose';
import { LRUCache } from 'lru-cache';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { isCanonicalBase64url } from '../encoding/index.ts';

type SigningKey = Parameters<SignJWT['sign']>[0];
type PublicKey = Parameters<typeof exportJWK>[0];

/** The claims of a Groundwork access token. */
export interface AccessClaims {
  /** The user id. */
  sub: string;
  /** The session id: checked on every request, so signing out takes effect at once. */
  sid: string;
}

export interface KeyRingOptions {
  /** PKCS#8 PEM (Ed25519 or P-256); null generates an Ed25519 key for this process. */
  privateKeyPem: string | null;
  /**
   * PEM keys (public or private; only the public half is used) that signed before the current
   * one: published in the JWKS and accepted by `verify`, never used to sign.
   */
  previousKeyPems?: readonly string[];
  issuer: string;
  audience: string;
  accessTokenTtlS: number;
}

type Alg = 'EdDSA' | 'ES256';

/** Tokens whose verification is remembered (bounded by count and by characters). */
const VERIFIED_MAX_ENTRIES = 10_000;
const VERIFIED_MAX_CHARS = 8_000_000;
/** Characters of a token's end (its signature) its verified claims are found by. */
const VERIFIED_KEY_CHARS = 32;
/** A compact JWS: three base64url parts. */
const JWT_SYNTAX = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
/** The ids this server signs (`sub`, `sid`): UUIDs in PostgreSQL's lowercase text form. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Where a token's verified claims are kept: the end of its signature. */
const lookupKey = (token: string) =>
  token.length > VERIFIED_KEY_CHARS ? token.slice(-VERIFIED_KEY_CHARS) : token;

/** A bearer token that is not even a compact JWS. */
export class MalformedTokenError extends Error {
  constructor() {
    super('not a compact JWS');
    this.name = 'MalformedTokenError';
  }
}

/** A token whose signature verifies but whose claims are not of the shape this server signs. */
export class InvalidClaimsError extends Error {
  constructor(claim: string) {
    super(`claim ${claim} is not of the expected shape`);
    this.name = 'InvalidClaimsError';
  }
}

/**
 * The claims, checked for shape before anything uses them: `sub` and `sid` UUIDs (they reach
 * SQL: anything else was a 500), `iat` and `exp` whole seconds, `exp` after `iat`. jose has
 * already checked the issuer, the audience, that `exp` is a number in the future.
 */
function shaped(payload: JWTPayload): AccessClaims & JWTPayload {
  const { sub, sid, iat, exp } = payload as Record<string, unknown>;
  if (typeof sub !== 'string' || !UUID.test(sub)) throw new InvalidClaimsError('sub');
  if (typeof sid !== 'string' || !UUID.test(sid)) throw new InvalidClaimsError('sid');
  if (typeof iat !== 'number' || !Number.isSafeInteger(iat) || iat < 0)
    throw new InvalidClaimsError('iat');
  if (typeof exp !== 'number' || !Number.isSafeInteger(exp) || exp <= iat)
    throw new InvalidClaimsError('exp');
  return Object.freeze(payload) as AccessClaims & JWTPayload;
}

/** The public JWK as published: `kid` (its thumbprint), `alg`, `use`; never a private part. */
async function publishable(key: PublicKey, alg: Alg): Promise<JWK> {
  const { kty, crv, x, y } = await exportJWK(key);
  const jwk: JWK = { kty, crv, x, ...(y === undefined ? {} : { y }) };
  return { ...jwk, kid: await calculateJwkThumbprint(jwk), alg, use: 'sig' };
}

/**
 * The access-token signer and verifier: one asymmetric signing key with a `kid` (its JWK
 * thumbprint), earlier keys kept for verification during a rotation, the published JWKS, and
 * verification pinned to the algorithms of those keys, the issuer and the audience.
 */
export class KeyRing {
  readonly alg: Alg;
  readonly kid: string;
  readonly jwks: { keys: JWK[] };
  readonly #privateKey: SigningKey;
  readonly #resolve: ReturnType<typeof createLocalJWKSet>;
  readonly #options: KeyRingOptions;
  readonly #algorithms: Alg[];
  /**
   * Tokens already verified, by their exact text: the same bytes verify the same way under the
   * same keys (which only change with a restart), so only `exp` is checked again. A signature
   * check costs about 100 µs, the bulk of authenticating a request; only valid tokens get in.
   * Found by the last characters of the signature and then compared whole: hashing the whole
   * token (a new string on every request) to look it up cost more than half a microsecond.
   */
  readonly #verified = new LRUCache<string, { token: string; claims: AccessClaims & JWTPayload }>({
    max: VERIFIED_MAX_ENTRIES,
    maxSize: VERIFIED_MAX_CHARS,
    sizeCalculation: (value) => value.token.length,
  });

  private constructor(
    options: KeyRingOptions,
    alg: Alg,
    kid: string,
    privateKey: SigningKey,
    published: JWK[],
  ) {
    this.#options = options;
    this.alg = alg;
    this.kid = kid;
    this.#privateKey = privateKey;
    this.jwks = { keys: published };
    this.#algorithms = [...new Set(published.map((k) => k.alg as Alg))];
    // The local set picks the key by `kid` and checks it suits the header's `alg`.
    this.#resolve = createLocalJWKSet(this.jwks);
  }

  /** Loads the configured keys, or generates a signing key (development and test). */
  static async create(options: KeyRingOptions): Promise<KeyRing> {
    let privateKey: SigningKey;
    let publicKey: PublicKey;
    let alg: Alg;
    if (options.privateKeyPem === null) {
      alg = 'EdDSA';
      ({ privateKey, publicKey } = await generateKeyPair(alg, { extractable: true }));
    } else {
      const node = createPrivateKey(options.privateKeyPem);
      alg = node.asymmetricKeyType === 'ed25519' ? 'EdDSA' : 'ES256';
      privateKey = await importPKCS8(options.privateKeyPem, alg);
      publicKey = createPublicKey(node);
    }
    const current = await publishable(publicKey, alg);
    const published = [current];
    for (const pem of options.previousKeyPems ?? []) {
      const node = createPublicKey(pem);
      const jwk = await publishable(node, node.asymmetricKeyType === 'ed25519' ? 'EdDSA' : 'ES256');
      // The current key listed again among the previous ones is published once.
      if (!published.some((k) => k.kid === jwk.kid)) published.push(jwk);
    }
    return new KeyRing(options, alg, current.kid as string, privateKey, published);
  }

  /** The `kid`s of the earlier keys still accepted (rotation). */
  get previousKids(): string[] {
    return this.jwks.keys.slice(1).map((k) => k.kid as string);
  }

  /** A signed access token for this session, valid for the configured lifetime. */
  async sign(claims: AccessClaims): Promise<string> {
    return new SignJWT({ sid: claims.sid })
      .setProtectedHeader({ alg: this.alg, kid: this.kid, typ: 'at+jwt' })
      .setSubject(claims.sub)
      .setIssuer(this.#options.issuer)
      .setAudience(this.#options.audience)
      .setIssuedAt()
      .setExpirationTime(`${this.#options.accessTokenTtlS}s`)
      .sign(this.#privateKey);
  }

  /** The claims of a token verified before and not expired since, at once; else undefined. */
  verified(token: string): (AccessClaims & JWTPayload) | undefined {
    const lookup = lookupKey(token);
    const known = this.#verified.get(lookup);
    if (known === undefined || known.token !== token) return undefined;
    if ((known.claims.exp ?? 0) * 1000 > Date.now()) return known.claims;
    this.#verified.delete(lookup);
    return undefined;
  }

  /**
   * The claims of a valid token; throws for anything else: not canonical base64url in every part
   * (`MalformedTokenError`), another algorithm (`none`, HS256 with the public key), an unknown
   * `kid`, a bad signature, another issuer or audience, expired, claims of another shape
   * (`InvalidClaimsError`).
   */
  async verify(token: string): Promise<AccessClaims & JWTPayload> {
    const known = this.verified(token);
    if (known !== undefined) return known;
    // Every part canonical: decoders ignore the spare bits of a part's last character, so a
    // variant would verify and be cached as another token. Only canonical tokens get cached, and
    // `verified` compares the whole text, so a variant never hits the cache either.
    if (!JWT_SYNTAX.test(token) || !token.split('.').every(isCanonicalBase64url))
      throw new MalformedTokenError();
    const { payload } = await jwtVerify(token, this.#resolve, {
      algorithms: this.#algorithms,
      issuer: this.#options.issuer,
      audience: this.#options.audience,
      typ: 'at+jwt',
      requiredClaims: ['sub', 'sid', 'exp', 'iat'],
    });
    const claims = shaped(payload);
    this.#verified.set(lookupKey(token), { token, claims });
    return claims;
  }
}
