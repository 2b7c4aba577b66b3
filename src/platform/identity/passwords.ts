import { hash, verify, type Algorithm } from '@node-rs/argon2';
import { randomBytes } from 'node:crypto';
import { HttpCodes, HttpError, type FieldError } from '../http/index.ts';
import { passwordStrengthPool, StrengthUnavailableError } from './password-strength.ts';

export interface Argon2Params {
  readonly memoryKib: number;
  readonly timeCost: number;
  readonly parallelism: number;
}

export interface PasswordPolicy {
  readonly minLength: number;
  readonly maxLength: number;
  readonly minScore: number;
}

// `Algorithm` is an ambient const enum (not importable as a value here): Argon2id is 2.
const ARGON2ID = 2 as Algorithm;
const PHC = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$/;

/** argon2id hashing at the configured cost; verification tells when a hash is due for a rehash. */
export class PasswordHasher {
  readonly #params: Argon2Params;
  #dummy: Promise<string> | undefined;

  constructor(params: Argon2Params) {
    this.#params = params;
  }

  /** The PHC string of an (already normalised) password. */
  hash(password: string): Promise<string> {
    return hash(password, {
      algorithm: ARGON2ID,
      memoryCost: this.#params.memoryKib,
      timeCost: this.#params.timeCost,
      parallelism: this.#params.parallelism,
    });
  }

  /**
   * Checks a password against a stored hash, or, for an unknown account (`stored` null), against
   * a dummy hash at the same cost, so both take the same time. `rehash` is true when the stored
   * hash was made with other parameters than the current ones.
   */
  async verify(stored: string | null, password: string): Promise<{ ok: boolean; rehash: boolean }> {
    this.#dummy ??= this.hash(randomBytes(16).toString('base64url'));
    const target = stored ?? (await this.#dummy);
    let ok: boolean;
    try {
      ok = await verify(target, password);
    } catch {
      ok = false;
    }
    return { ok: ok && stored !== null, rehash: ok && stored !== null && this.needsRehash(target) };
  }

  /** True when the hash was not made with the current algorithm and parameters. */
  needsRehash(stored: string): boolean {
    const m = PHC.exec(stored);
    if (!m) return true;
    const p = this.#params;
    return (
      Number(m[1]) !== p.memoryKib || Number(m[2]) !== p.timeCost || Number(m[3]) !== p.parallelism
    );
  }
}

/**
 * Characters of a password zxcvbn rates. Its cost grows faster than the length: on the shared
 * 2-core test machine, idle, the worst inputs measured (random printable or digit-heavy) took
 * about 0.2 s at 32 characters, 0.6 s at 64 and 1.2 s at 128 (zxcvbn itself reads 256). A longer
 * password is rated on this prefix alone: whoever guesses the whole must guess the prefix first,
 * so a strong prefix makes a strong password; a weak prefix is refused even when the rest would
 * be strong (the message says so).
 */
export const SCORED_CHARS = 32;

/**
 * Why a new (normalised) password is refused, or nothing: its length in characters, then the
 * zxcvbn score of its first `SCORED_CHARS` characters with the account's own words (user name,
 * address and its parts) as context. The score is computed in a worker thread with a time
 * budget (never on the event loop); when the check cannot finish in time it throws a 503
 * `OVERLOADED` (retry), never accepting a password it did not rate.
 */
export async function passwordProblems(
  password: string,
  policy: PasswordPolicy,
  context: readonly string[],
  path = '/body/password',
): Promise<FieldError[]> {
  const chars = [...password];
  if (chars.length < policy.minLength)
    return [{ path, message: `must be at least ${policy.minLength} characters` }];
  if (chars.length > policy.maxLength)
    return [{ path, message: `must be at most ${policy.maxLength} characters` }];
  const prefix = chars.length > SCORED_CHARS;
  const words = context
    .flatMap((c) => [c, c.replace(/[^\p{L}\p{N}]+/gu, ''), ...c.split(/[@._+-]+/)])
    .filter((w) => w.length >= 3);
  let result;
  try {
    result = await passwordStrengthPool().score(
      prefix ? chars.slice(0, SCORED_CHARS).join('') : password,
      words,
    );
  } catch (error) {
    if (!(error instanceof StrengthUnavailableError)) throw error;
    throw new HttpError(HttpCodes.OVERLOADED, {
      detail: 'The password strength check is busy; retry in a moment.',
      headers: { 'retry-after': '1' },
      cause: error,
    });
  }
  if (result.score >= policy.minScore) return [];
  const hints = [result.warning, ...result.suggestions].filter(
    (h): h is string => typeof h === 'string' && h !== '',
  );
  const what = prefix ? `its first ${SCORED_CHARS} characters are` : 'is';
  return [
    {
      path,
      message: `${what} too easy to guess (strength ${result.score} of 4, at least ${policy.minScore} needed)${hints.length > 0 ? `: ${hints.join(' ')}` : ''}`,
    },
  ];
}
