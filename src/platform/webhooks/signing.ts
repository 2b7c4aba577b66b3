import { createHmac, randomBytes } from 'node:crypto';

// Standard Webhooks signing (https://www.standardwebhooks.com): HMAC-SHA256 over
// `${id}.${timestamp}.${body}`. Written here rather than taken from the `standardwebhooks` package
// because that package signs with one secret per instance and this needs several at once
// (rotation overlap); the tests verify our output with the package's verifier.

const SECRET_PREFIX = 'whsec_';
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
/** The spec asks for secrets of 24 to 64 bytes. */
const MIN_SECRET_BYTES = 24;
const MAX_SECRET_BYTES = 64;

/** A new signing secret: `whsec_` and the base64 of 32 random bytes. Shown to its owner once. */
export function newWebhookSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString('base64');
}

/** The key bytes of a `whsec_...` secret; throws a TypeError on a malformed one. */
export function secretKey(secret: string): Buffer {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  if (!BASE64.test(encoded)) throw new TypeError('webhook secret is not base64');
  const key = Buffer.from(encoded, 'base64');
  if (key.length < MIN_SECRET_BYTES || key.length > MAX_SECRET_BYTES)
    throw new TypeError(
      `webhook secret must be ${MIN_SECRET_BYTES} to ${MAX_SECRET_BYTES} bytes, not ${key.length}`,
    );
  return key;
}

/**
 * The `webhook-signature` header value: `v1,<base64>` per secret, space separated, in the order
 * given (during a rotation, the new secret and the previous one both sign).
 */
export function signWebhook(
  secrets: readonly string[],
  id: string,
  timestampSeconds: number,
  body: string,
): string {
  if (secrets.length === 0) throw new TypeError('at least one webhook secret is needed to sign');
  if (!Number.isSafeInteger(timestampSeconds) || timestampSeconds < 0)
    throw new TypeError('webhook timestamp must be whole seconds since the epoch');
  const content = `${id}.${timestampSeconds}.${body}`;
  return secrets
    .map(
      (secret) => `v1,${createHmac('sha256', secretKey(secret)).update(content).digest('base64')}`,
    )
    .join(' ');
}
