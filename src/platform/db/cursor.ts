import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { decodeBase64url } from '../encoding/index.ts';
import { HttpError } from '../http/index.ts';
import { DbCodes } from './errors.ts';

/** What a keyset cursor carries: the sort signature it belongs to and the last row's key values. */
interface CursorPayload {
  s: string;
  k: (string | number | null)[];
}

const keys = new Map<string, KeyObject>();
/** The MAC: the first 22 characters of the HMAC's base64url (132 bits), compared as text. */
const MAC = /^[A-Za-z0-9_-]{22}$/;

function sign(secret: string, body: string): string {
  let key = keys.get(secret);
  if (!key) keys.set(secret, (key = createSecretKey(Buffer.from(secret))));
  return createHmac('sha256', key).update(body).digest('base64url').slice(0, 22);
}

function invalid(detail: string): HttpError {
  return new HttpError(DbCodes.INVALID_CURSOR, { detail });
}

/** An opaque cursor: base64url JSON plus an HMAC, so clients cannot forge positions. */
export function encodeCursor(
  secret: string,
  signature: string,
  keys: (string | number | null)[],
): string {
  const body = Buffer.from(
    JSON.stringify({ s: signature, k: keys } satisfies CursorPayload),
  ).toString('base64url');
  return `${body}.${sign(secret, body)}`;
}

/** Decodes and verifies a cursor for this listing's sort signature; 400 INVALID_CURSOR otherwise. */
export function decodeCursor(
  secret: string,
  signature: string,
  cursor: string,
  keyCount: number,
): (string | number | null)[] {
  if (cursor.length > 2_048) throw invalid('The cursor is too long.');
  const [body, mac, extra] = cursor.split('.');
  // The body decoded only when canonical: one position, one text (see isCanonicalBase64url).
  const bytes = body ? decodeBase64url(body) : null;
  if (bytes === null || !mac || extra !== undefined || !MAC.test(mac))
    throw invalid('The cursor is malformed.');
  const expected = Buffer.from(sign(secret, body as string));
  const given = Buffer.from(mac);
  if (expected.length !== given.length || !timingSafeEqual(expected, given))
    throw invalid('The cursor is not valid.');
  let payload: CursorPayload;
  try {
    payload = JSON.parse(bytes.toString('utf8')) as CursorPayload;
  } catch {
    throw invalid('The cursor is malformed.');
  }
  if (payload === null || typeof payload !== 'object') throw invalid('The cursor is malformed.');
  // eslint-disable-next-line no-restricted-syntax -- `signature` names the listing's sort order, not a secret (the MAC was checked above with timingSafeEqual)
  if (payload.s !== signature)
    throw invalid('The cursor belongs to another sort order or listing.');
  if (!Array.isArray(payload.k) || payload.k.length !== keyCount)
    throw invalid('The cursor is malformed.');
  return payload.k;
}
