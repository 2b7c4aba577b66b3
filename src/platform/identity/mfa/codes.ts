import { createHmac, hkdfSync, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { HOTP, Secret, TOTP } from 'otpauth';

/** RFC 6238 parameters every authenticator app understands: SHA-1, 6 digits, 30 s steps. */
export const TOTP_PARAMS = { algorithm: 'SHA1', digits: 6, period: 30 } as const;
/** Steps accepted either side of the current one (clock drift, a code typed as it changed). */
export const TOTP_WINDOW = 1;
export const TOTP_CODE_PATTERN = '^[0-9]{6}$';

/** A new random TOTP secret: 20 bytes (the RFC 4226 recommendation), base32. */
export function newTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

/** The authenticator entry for a secret, for its otpauth URI. */
export function totpFor(secretBase32: string, label: string, issuer: string): TOTP {
  return new TOTP({ ...TOTP_PARAMS, issuer, label, secret: Secret.fromBase32(secretBase32) });
}

/** The time step (RFC 6238 counter) of a moment. */
export function totpStep(nowMs: number): number {
  return Math.floor(nowMs / 1_000 / TOTP_PARAMS.period);
}

/**
 * The time step a code belongs to when it is valid within the window and newer than
 * `lastStep`; null otherwise. Steps at or before `lastStep` are not even tried: a code used
 * once, or one older than a code used since, cannot be replayed.
 */
export function matchTotp(
  secretBase32: string,
  code: string,
  options: { nowMs: number; lastStep: number | null },
): number | null {
  if (!new RegExp(TOTP_CODE_PATTERN).test(code)) return null;
  const secret = Secret.fromBase32(secretBase32);
  const current = totpStep(options.nowMs);
  // The current step first, then the neighbours, like otpauth's own validate; each one alone
  // (window 0) so the step is known and used steps are skipped.
  const steps = [current];
  for (let i = 1; i <= TOTP_WINDOW; i++) steps.push(current - i, current + i);
  for (const step of steps) {
    if (options.lastStep !== null && step <= options.lastStep) continue;
    const delta = HOTP.validate({
      token: code,
      secret,
      algorithm: TOTP_PARAMS.algorithm,
      digits: TOTP_PARAMS.digits,
      counter: step,
      window: 0,
    });
    if (delta !== null) return step;
  }
  return null;
}

/** Crockford's base32 (no i, l, o, u): easy to read aloud and to type. */
const BACKUP_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
export const BACKUP_CODE_COUNT = 10;
/** Ten characters, with or without the dash in the middle, any case. */
export const BACKUP_CODE_PATTERN = '^[0-9A-Za-z]{5}-?[0-9A-Za-z]{5}$';

/** `count` random backup codes of 50 bits each, shown as `xxxxx-xxxxx`. */
export function newBackupCodes(count = BACKUP_CODE_COUNT): string[] {
  return Array.from({ length: count }, () => {
    // 256 is a multiple of 32: taking the low five bits of each byte is unbiased.
    const chars = [...randomBytes(10)].map((b) => BACKUP_ALPHABET[b & 31]).join('');
    return `${chars.slice(0, 5)}-${chars.slice(5)}`;
  });
}

/** A typed backup code as stored: lowercase, no dash or spaces, Crockford's look-alikes folded. */
export function normalizeBackupCode(input: string): string {
  return input.toLowerCase().replace(/[\s-]/g, '').replace(/[il]/g, '1').replace(/o/g, '0');
}

/**
 * What is stored of a backup code: HMAC-SHA-256 under a key derived from `APP_SECRET`, over the
 * user id and the code. 50 bits would fall to an offline search of a plain hash; without the
 * key a stolen table is useless, and the user id stops one code's hash matching another account.
 */
export class BackupCodeHasher {
  readonly #key: Buffer;

  constructor(appSecret: string) {
    this.#key = Buffer.from(
      hkdfSync('sha256', appSecret, 'groundwork', 'identity mfa backup codes', 32),
    );
  }

  hash(userId: string, code: string): string {
    return createHmac('sha256', this.#key)
      .update(`${userId}:${normalizeBackupCode(code)}`)
      .digest('hex');
  }
}

export const SMS_CODE_PATTERN = '^[0-9]{6}$';

/** A random 6-digit SMS code (uniform: `randomInt` rejects the biased tail). */
export function newSmsCode(): string {
  return String(randomInt(0, 1_000_000)).padStart(6, '0');
}

/**
 * What is stored of an SMS code: HMAC-SHA-256 under a key derived from `APP_SECRET` over the
 * user, the purpose and the code. A million codes fall to an offline search of a plain hash; the
 * key stops that. `matches` compares in constant time.
 */
export class SmsCodeHasher {
  readonly #key: Buffer;

  constructor(appSecret: string) {
    this.#key = Buffer.from(
      hkdfSync('sha256', appSecret, 'groundwork', 'identity mfa sms codes', 32),
    );
  }

  hash(userId: string, purpose: string, code: string): string {
    return createHmac('sha256', this.#key).update(`${userId}:${purpose}:${code}`).digest('hex');
  }

  matches(stored: string, userId: string, purpose: string, code: string): boolean {
    if (!new RegExp(SMS_CODE_PATTERN).test(code)) return false;
    const a = Buffer.from(stored, 'hex');
    const b = Buffer.from(this.hash(userId, purpose, code), 'hex');
    return a.length === b.length && timingSafeEqual(a, b);
  }
}
