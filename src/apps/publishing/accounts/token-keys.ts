import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/**
 * Platform tokens sealed at rest with AES-256-GCM. The sealed text names its key:
 * `v1.<kid>.<base64url(iv | tag | cipher text)>`, so keys rotate without a flag day: the first
 * key of `PUBLISHING_TOKEN_KEYS` seals, every listed key opens, and the rotation job re-seals rows
 * whose key is not the current one. The additional data binds a sealed token to its account and
 * column, so a sealed value copied onto another row does not open there.
 */
export class TokenKeys {
  readonly currentKid: string;
  readonly #keys: ReadonlyMap<string, Buffer>;

  constructor(keys: readonly { kid: string; key: Buffer }[]) {
    if (keys.length === 0) throw new Error('TokenKeys needs at least one key');
    for (const { key } of keys) if (key.length !== 32) throw new Error('token keys are 32 bytes');
    this.currentKid = keys[0]!.kid;
    this.#keys = new Map(keys.map((k) => [k.kid, k.key]));
  }

  /**
   * From `PUBLISHING_TOKEN_KEYS` (`kid:base64key,...`), or one key derived from `APP_SECRET` with
   * HKDF (kid `app`) when it is empty, so that a zero-configuration install still encrypts.
   */
  static fromSettings(setting: string, appSecret: string): TokenKeys {
    if (setting.trim() === '')
      return new TokenKeys([
        {
          kid: 'app',
          key: Buffer.from(hkdfSync('sha256', appSecret, 'groundwork', 'publishing tokens', 32)),
        },
      ]);
    return new TokenKeys(
      setting.split(',').map((entry) => {
        const at = entry.indexOf(':');
        const kid = entry.slice(0, at);
        const raw = entry.slice(at + 1);
        return { kid, key: Buffer.from(raw, /[-_]/.test(raw) ? 'base64url' : 'base64') };
      }),
    );
  }

  seal(plain: string, context: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#keys.get(this.currentKid)!, iv);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    const packed = Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
    return `v1.${this.currentKid}.${packed}`;
  }

  /** The key id a sealed text names (null: not ours). */
  static kidOf(sealed: string): string | null {
    const parts = sealed.split('.');
    return parts.length === 3 && parts[0] === 'v1' ? (parts[1] ?? null) : null;
  }

  /** The plain text; throws when the key is unknown or the text was altered or moved. */
  open(sealed: string, context: string): string {
    const [version, kid, packed] = sealed.split('.');
    const key = kid === undefined ? undefined : this.#keys.get(kid);
    if (version !== 'v1' || key === undefined || packed === undefined)
      throw new Error(`sealed token under an unknown key (${kid ?? 'none'})`);
    const raw = Buffer.from(packed, 'base64url');
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    decipher.setAAD(Buffer.from(context, 'utf8'));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
  }

  /** Whether `sealed` is under a key other than the current one (to re-seal). */
  isStale(sealed: string): boolean {
    return TokenKeys.kidOf(sealed) !== this.currentKid;
  }
}
