import { hash, verify, type Algorithm } from '@node-rs/argon2';
import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import { adjacencyGraphs, dictionary as commonWords } from '@zxcvbn-ts/language-common';
import { dictionary as englishWords, translations } from '@zxcvbn-ts/language-en';
import { randomBytes } from 'node:crypto';
import type { FieldError } from '../http/index.ts';

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

let zxcvbn: ZxcvbnFactory | undefined;
function estimator(): ZxcvbnFactory {
  zxcvbn ??= new ZxcvbnFactory({
    dictionary: { ...commonWords, ...englishWords },
    graphs: adjacencyGraphs,
    translations,
  });
  return zxcvbn;
}

/**
 * Why a new (normalised) password is refused, or nothing: its length in characters, then its
 * zxcvbn score with the account's own words (user name, address and its parts) as context.
 */
export function passwordProblems(
  password: string,
  policy: PasswordPolicy,
  context: readonly string[],
  path = '/body/password',
): FieldError[] {
  const length = [...password].length;
  if (length < policy.minLength)
    return [{ path, message: `must be at least ${policy.minLength} characters` }];
  if (length > policy.maxLength)
    return [{ path, message: `must be at most ${policy.maxLength} characters` }];
  const words = context
    .flatMap((c) => [c, c.replace(/[^\p{L}\p{N}]+/gu, ''), ...c.split(/[@._+-]+/)])
    .filter((w) => w.length >= 3);
  const result = estimator().check(password, words);
  if (result.score >= policy.minScore) return [];
  const hints = [result.feedback.warning, ...result.feedback.suggestions].filter(
    (h): h is string => typeof h === 'string' && h !== '',
  );
  return [
    {
      path,
      message: `is too easy to guess (strength ${result.score} of 4, at least ${policy.minScore} needed)${hints.length > 0 ? `: ${hints.join(' ')}` : ''}`,
    },
  ];
}
