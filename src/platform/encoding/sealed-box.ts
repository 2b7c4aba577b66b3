import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM under a key derived from `APP_SECRET` (HKDF, one key per purpose), for secrets that
 * must be read back: a rotated refresh token's successor, TOTP secrets, webhook signing secrets.
 * Sealed text is base64url of IV, tag and cipher text; `open` answers null for anything it did not
 * seal under this key.
 */
export class SealedBox {
  readonly #key: Buffer;

  /** `purpose` separates keys: each use of the box gets its own (HKDF info). */
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
