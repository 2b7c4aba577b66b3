declare const cacheKeyBrand: unique symbol;

/**
 * A cache key made by `cacheKey` or `userCacheKey`, never by hand: the brand makes the type
 * checker refuse a plain string, so every key goes through the encoding below.
 */
export type CacheKey = string & { readonly [cacheKeyBrand]: true };

/** One segment of a key: ids, slugs, page numbers. */
export type KeyPart = string | number;

/** A namespace is the key's first segment and the `namespace` label of the cache metrics. */
const NAMESPACE = /^[a-z][a-z0-9_-]{0,47}$/;
const SPECIAL = /[%:@]/;
const SPECIAL_ALL = /[%:@]/g;

/**
 * Encodes one segment so that `:` separates segments unambiguously and `@` at the start of a
 * segment can only come from `userCacheKey`: `%`, `:` and `@` become `%25`, `%3A` and `%40`.
 */
export function encodeKeyPart(part: KeyPart): string {
  if (typeof part === 'number') {
    if (!Number.isFinite(part)) throw new TypeError(`cache key part ${String(part)} is not finite`);
    return String(part);
  }
  if (typeof part !== 'string') throw new TypeError('cache key parts are strings or numbers');
  if (!SPECIAL.test(part)) return part;
  return part.replace(SPECIAL_ALL, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function checkNamespace(namespace: string): void {
  if (!NAMESPACE.test(namespace))
    throw new TypeError(
      `cache namespace "${namespace}" must be lower-case letters, digits, _ or - (a fixed name, not data)`,
    );
}

function checkUserId(userId: KeyPart): void {
  if (userId === '' || userId === null || userId === undefined)
    throw new TypeError('a user-scoped cache key needs a user id');
}

/**
 * A key for data that is the same for every caller (a public listing, a product page):
 * `namespace:part:part`. Anything that depends on who asks must use `userCacheKey` instead.
 */
export function cacheKey(namespace: string, ...parts: KeyPart[]): CacheKey {
  checkNamespace(namespace);
  let key = namespace;
  for (const part of parts) key += `:${encodeKeyPart(part)}`;
  return key as CacheKey;
}

/**
 * A key only `userId` can reach: `namespace:@<userId>:part:part`. No `cacheKey(...)` and no other
 * user's id produces the same string, because `@` opens a segment only here.
 */
export function userCacheKey(userId: KeyPart, namespace: string, ...parts: KeyPart[]): CacheKey {
  checkNamespace(namespace);
  checkUserId(userId);
  let key = `${namespace}:@${encodeKeyPart(userId)}`;
  for (const part of parts) key += `:${encodeKeyPart(part)}`;
  return key as CacheKey;
}

/** The conventional tag of everything cached for one user: `user:<id>`. */
export function userTag(userId: KeyPart): string {
  checkUserId(userId);
  return `user:${encodeKeyPart(userId)}`;
}

/** The namespace (first segment) of a key: the metrics label. */
export function namespaceOf(key: CacheKey): string {
  const end = key.indexOf(':');
  return end === -1 ? key : key.slice(0, end);
}
