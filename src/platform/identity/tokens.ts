import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';

/** A new opaque secret for a mail link or a refresh token: 32 random bytes, base64url. */
export function newOpaqueToken(): string {
  return randomBytes(32).toString('base64url');
}

/** What is stored of an opaque token: its SHA-256 (hex). The token itself is never stored. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/**
 * AES-256-GCM under a key derived from `APP_SECRET`, for the one secret kept for a short while:
 * a rotated refresh token's successor, handed back to a concurrent refresh within the grace window.
 */
export class TokenBox {
  readonly #key: Buffer;

  /** `purpose` separates the keys of different uses of the box. */
  constructor(appSecret: string, purpose = 'identity refresh successor') {
    this.#key = Buffer.from(hkdfSync('sha256', appSecret, 'groundwork', purpose, 32));
  }

  seal(plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
  }

  /** The plain text, or null when the box was not sealed with this key or was altered. */
  open(sealed: string): string | null {
    try {
      const raw = Buffer.from(sealed, 'base64url');
      const decipher = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, 12));
      decipher.setAuthTag(raw.subarray(12, 28));
      return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
    } catch {
      return null;
    }
  }
}
