export { createCache } from './cache.ts';
export type { Cache, CacheOptions, CacheSetOptions } from './cache.ts';
export type { NearCacheSettings, NearState } from './near.ts';
export { cacheKey, userCacheKey, userTag, encodeKeyPart } from './keys.ts';
export type { CacheKey, KeyPart } from './keys.ts';
export { registerHttpCaching, cacheControl, strongEtag, etagMatches } from './http.ts';
export type { HttpCachePolicy, RouteCacheConfig } from './http.ts';
