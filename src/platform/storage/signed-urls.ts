import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

/** What a signed URL of the server itself carries besides the key. */
export interface SignedGetParams {
  readonly expires: number;
  readonly disposition?: string;
  readonly type?: string;
}

export interface SignedPutParams {
  readonly expires: number;
  readonly type: string;
  readonly length: number;
  readonly sha256: string;
}

/**
 * Signatures of the local driver's URLs (`/api/v1/storage/objects/<key>?expires=&signature=`):
 * HMAC-SHA-256 under a key derived from `APP_SECRET` (HKDF, its own purpose), over the method,
 * the key, the expiry and every parameter the URL binds, each length-prefixed so no two
 * different sets of values share a signed string. Checked in constant time.
 */
export class UrlSigner {
  readonly #key: Buffer;

  constructor(appSecret: string) {
    this.#key = Buffer.from(hkdfSync('sha256', appSecret, 'groundwork', 'storage signed urls', 32));
  }

  #sign(parts: readonly string[]): string {
    const hmac = createHmac('sha256', this.#key);
    for (const part of parts) hmac.update(`${String(Buffer.byteLength(part))}:${part}\n`);
    return hmac.digest('base64url');
  }

  /** The signature of a download of `key`. */
  signGet(key: string, params: SignedGetParams): string {
    return this.#sign([
      'GET',
      key,
      String(params.expires),
      params.disposition ?? '',
      params.type ?? '',
    ]);
  }

  /** The signature of an upload of exactly these bytes to `key`. */
  signPut(key: string, params: SignedPutParams): string {
    return this.#sign([
      'PUT',
      key,
      String(params.expires),
      params.type,
      String(params.length),
      params.sha256,
    ]);
  }

  /** Whether `signature` is this signer's for the download (expiry not checked here). */
  verifyGet(key: string, params: SignedGetParams, signature: string): boolean {
    return same(this.signGet(key, params), signature);
  }

  /** Whether `signature` is this signer's for the upload (expiry not checked here). */
  verifyPut(key: string, params: SignedPutParams, signature: string): boolean {
    return same(this.signPut(key, params), signature);
  }
}

function same(expected: string, given: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * `attachment; filename="..."` with the name made safe: quotes, backslashes, control characters
 * and path separators replaced, cut to 200 characters, plus an RFC 8187 `filename*` for names
 * that are not plain ASCII. `inline` when there is no name.
 */
export function contentDisposition(
  type: 'inline' | 'attachment',
  filename?: string | null,
): string {
  if (filename === undefined || filename === null || filename === '') return type;
  const cleaned = [...filename.toWellFormed().normalize('NFC')]
    .map((c) =>
      c.charCodeAt(0) < 0x20 || c === '\u007f' || c === '"' || c === '\\' || c === '/' ? '_' : c,
    )
    .slice(0, 200)
    .join('');
  const ascii = cleaned.replace(/[^\u0020-\u007e]/g, '_');
  const encoded = encodeURIComponent(cleaned).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return ascii === cleaned
    ? `${type}; filename="${ascii}"`
    : `${type}; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

/** Whether a `Content-Disposition` value is one `contentDisposition` could have made (safe to echo). */
export function isSafeDisposition(value: string): boolean {
  return (
    value.length <= 1_000 &&
    // eslint-disable-next-line security/detect-unsafe-regex -- the nested groups are optional, not repeated: linear
    /^(inline|attachment)(; filename="[\u0020-\u0021\u0023-\u005b\u005d-\u007e]*"(; filename\*=UTF-8''[A-Za-z0-9%!#$&+.^_`|~-]*)?)?$/.test(
      value,
    )
  );
}

/**
 * A `Content-Disposition` for a signed URL: kept when `contentDisposition` could have made it,
 * otherwise rebuilt from its type and file name (so a name with quotes, CR/LF or `../` in it is
 * made safe rather than echoed). Anything else throws.
 */
export function safeDisposition(value: string): string {
  if (isSafeDisposition(value)) return value;
  // eslint-disable-next-line security/detect-unsafe-regex -- at worst quadratic on a run of spaces in a module's own value (not a client's), up to a header's length
  const match = /^\s*(inline|attachment)\s*(?:;\s*filename\s*=\s*"?(.*?)"?\s*)?$/is.exec(value);
  if (!match) throw new Error('Content-Disposition must be inline or attachment with a file name');
  const type = match[1]?.toLowerCase() === 'inline' ? 'inline' : 'attachment';
  return contentDisposition(type, match[2]);
}
