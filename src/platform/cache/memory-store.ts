import { LRUCache } from 'lru-cache';
import type { CacheStore } from './store.ts';

interface Entry {
  readonly value: string;
  readonly tags: readonly string[];
}

export interface MemoryStoreOptions {
  maxEntries: number;
  maxBytes: number;
}

/** Bytes charged to an entry: strings counted at two bytes a character plus bookkeeping. */
function entrySize(key: string, entry: Entry): number {
  let size = 64 + 2 * (key.length + entry.value.length);
  for (const tag of entry.tags) size += 48 + 2 * (tag.length + key.length);
  return size;
}

/**
 * The in-process store: an LRU bounded by entry count and by bytes, with per-entry TTL. The tag
 * index (tag -> keys) only ever holds keys that are in the LRU: an entry leaving it for any reason
 * (eviction, expiry, delete, overwrite) removes its key from its tags, and an empty tag is dropped.
 */
export class MemoryStore implements CacheStore {
  readonly backend = 'memory';
  readonly #tags = new Map<string, Set<string>>();
  readonly #lru: LRUCache<string, Entry>;

  constructor(options: MemoryStoreOptions) {
    this.#lru = new LRUCache<string, Entry>({
      max: options.maxEntries,
      maxSize: options.maxBytes,
      sizeCalculation: (entry, key) => entrySize(key, entry),
      dispose: (entry, key) => this.#untag(key, entry.tags),
    });
  }

  get(key: string): string | undefined {
    return this.#lru.get(key)?.value;
  }

  set(key: string, value: string, ttlMs: number, tags: readonly string[]): void {
    const entry: Entry = { value, tags };
    this.#lru.set(key, entry, { ttl: ttlMs });
    // An entry larger than the whole budget is refused by the LRU: then it has no tags either.
    if (tags.length === 0 || this.#lru.peek(key) !== entry) return;
    for (const tag of tags) {
      let keys = this.#tags.get(tag);
      if (keys === undefined) {
        keys = new Set();
        this.#tags.set(tag, keys);
      }
      keys.add(key);
    }
  }

  delete(keys: readonly string[]): void {
    for (const key of keys) this.#lru.delete(key);
  }

  invalidateTags(tags: readonly string[]): void {
    for (const tag of tags) {
      const keys = this.#tags.get(tag);
      if (keys === undefined) continue;
      // Deleting disposes each entry, which edits this set: iterate over a copy.
      for (const key of [...keys]) this.#lru.delete(key);
      this.#tags.delete(tag);
    }
  }

  /** Entries, charged bytes and indexed tags: for the gauges and the bounded-memory tests. */
  stats(): { entries: number; bytes: number; tags: number } {
    return { entries: this.#lru.size, bytes: this.#lru.calculatedSize, tags: this.#tags.size };
  }

  close(): void {
    this.#lru.clear();
    this.#tags.clear();
  }

  #untag(key: string, tags: readonly string[]): void {
    for (const tag of tags) {
      const keys = this.#tags.get(tag);
      if (keys === undefined) continue;
      keys.delete(key);
      if (keys.size === 0) this.#tags.delete(tag);
    }
  }
}
