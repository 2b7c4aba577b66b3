import { Type, type Static } from 'typebox';
import {
  configDuration as duration,
  configMilliseconds as ms,
  parseDuration,
  type ConfigIssue,
} from '../config/index.ts';

/** The flags module's settings (`FLAGS_*`), validated with the platform's at start. */
export const FlagsConfig = Type.Object({
  FLAGS_LOCAL_TTL_MS: ms(
    'How long a process answers from its own copy of the flags before reading the shared cache again: with Redis, the longest a change takes to reach the other processes. 0: every evaluation reads the cache.',
    1_000,
    0,
    60_000,
  ),
  FLAGS_CACHE_TTL: duration(
    'How long the flags stay in the platform’s cache. With Redis a change invalidates them at once, so this bounds only a lost invalidation; without Redis it is how stale another process may be. At most 1h.',
    '60s',
  ),
});
export type FlagsConfig = Static<typeof FlagsConfig>;

/** The settings in the units the store uses. */
export interface FlagSettings {
  readonly localTtlMs: number;
  readonly cacheTtlSeconds: number;
}

const MAX_CACHE_TTL_S = 3_600;

/** `FLAGS_CACHE_TTL` above one hour is refused: a lost invalidation would last that long. */
export function checkFlagsConfig(values: FlagsConfig): ConfigIssue[] {
  return parseDuration(values.FLAGS_CACHE_TTL) > MAX_CACHE_TTL_S
    ? [{ key: 'FLAGS_CACHE_TTL', message: 'must be at most 1h' }]
    : [];
}

/** The parsed settings of a slice (the defaults when the module's settings were not loaded). */
export function flagSettings(values: Partial<FlagsConfig> | undefined): FlagSettings {
  return {
    localTtlMs: values?.FLAGS_LOCAL_TTL_MS ?? 1_000,
    cacheTtlSeconds: parseDuration(values?.FLAGS_CACHE_TTL ?? '60s'),
  };
}
