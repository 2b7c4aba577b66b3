import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Platform } from '../../platform/modules/index.ts';
import { addApiKeyUsage, findApiKeyByPrefix } from './repository.ts';

/**
 * Partner API keys: `pdk_<prefix>_<secret>`. Only the key's SHA-256 is stored; the prefix (not
 * secret) finds the row and the hashes are compared in constant time. Uses are counted in memory
 * and added to the key's row every few seconds (one statement for all keys).
 */

const FORMAT = /^pdk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

export function newApiKey(): { key: string; prefix: string; hash: Buffer } {
  const prefix = randomBytes(6).toString('hex');
  const key = `pdk_${prefix}_${randomBytes(32).toString('base64url')}`;
  return { key, prefix, hash: hashKey(key) };
}

function hashKey(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

interface Known {
  at: number;
  row: { id: string; hash: Buffer; rateLimitPerMin: number } | undefined;
}

export class ApiKeys {
  readonly #platform: Platform;
  readonly #ttlMs: number;
  readonly #known = new Map<string, Known>();
  #usage = new Map<string, number>();
  readonly #timer: NodeJS.Timeout;

  constructor(platform: Platform, ttlMs: number) {
    this.#platform = platform;
    this.#ttlMs = ttlMs;
    this.#timer = setInterval(() => {
      this.flush().catch((error: unknown) => {
        platform.logger.warn(
          { err: { message: (error as Error).message } },
          'api key usage not saved',
        );
      });
    }, 5_000);
    this.#timer.unref();
  }

  /** The key's id and limit, or null when it is not a live key. */
  async verify(key: string): Promise<{ id: string; rateLimitPerMin: number } | null> {
    const m = FORMAT.exec(key);
    // The hash is computed for malformed keys too: every refusal costs about the same.
    const given = hashKey(key);
    if (m === null) return null;
    const prefix = m[1] as string;
    let known = this.#known.get(prefix);
    if (known === undefined || Date.now() - known.at >= this.#ttlMs) {
      known = { at: Date.now(), row: await findApiKeyByPrefix(this.#platform.database.db, prefix) };
      if (this.#known.size > 10_000) this.#known.clear();
      this.#known.set(prefix, known);
    }
    const row = known.row;
    if (row === undefined || row.hash.length !== given.length || !timingSafeEqual(row.hash, given))
      return null;
    this.#usage.set(row.id, (this.#usage.get(row.id) ?? 0) + 1);
    return { id: row.id, rateLimitPerMin: row.rateLimitPerMin };
  }

  /** A revocation or a new key made here is seen at once. */
  forget(): void {
    this.#known.clear();
  }

  #flushing: Promise<void> = Promise.resolve();

  /** Writes the uses counted so far; resolves once every earlier flush has written too. */
  flush(): Promise<void> {
    const next = this.#flushing.then(() => this.#write());
    this.#flushing = next.catch(() => undefined);
    return next;
  }

  async #write(): Promise<void> {
    if (this.#usage.size === 0) return;
    const usage = this.#usage;
    this.#usage = new Map();
    try {
      await addApiKeyUsage(this.#platform.database.db, usage);
    } catch (error) {
      for (const [id, n] of usage) this.#usage.set(id, (this.#usage.get(id) ?? 0) + n);
      throw error;
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush().catch(() => undefined);
  }
}
