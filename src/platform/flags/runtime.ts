import {
  NOOP_PROVIDER,
  OpenFeature,
  type Client,
  type EvaluationContext,
  type EvaluationDetails,
  type JsonValue,
} from '@openfeature/server-sdk';
import type { Platform } from '../modules/index.ts';
import { DatabaseFlagProvider } from './provider.ts';
import { flagSettings } from './settings.ts';
import { FlagStore } from './store.ts';

/** Who a flag is evaluated for: a user id, anything carrying one (`currentUser(request)`), or nobody. */
export type FlagUser = string | { readonly userId: string } | null | undefined;

/** The flags of a platform, as apps evaluate them. */
export interface FeatureFlags {
  /**
   * Whether a boolean flag is on for this user here (`APP_ENV`). False when the flag does not
   * exist, is disabled, is not boolean, or cannot be read.
   */
  isEnabled(key: string, user?: FlagUser): Promise<boolean>;
  /** The value of a flag of the type of `defaultValue`, or `defaultValue` (as `isEnabled`). */
  getValue<T extends JsonValue>(key: string, defaultValue: T, user?: FlagUser): Promise<T>;
  /** The value with its variant and reason (`TARGETING_MATCH`, `SPLIT`, `DEFAULT`, `DISABLED`, `ERROR`). */
  details<T extends JsonValue>(
    key: string,
    defaultValue: T,
    user?: FlagUser,
  ): Promise<EvaluationDetails<T>>;
  /** This platform's OpenFeature client: its evaluations use the `targetingKey` as the user id. */
  readonly client: Client;
  /** The store behind the provider (the admin service invalidates it). */
  readonly store: FlagStore;
}

interface Runtime extends FeatureFlags {
  readonly domain: string;
}

const runtimes = new WeakMap<Platform, Runtime>();
let domains = 0;

/** The evaluation context of a user: OpenFeature's `targetingKey` is the user id. */
export function flagContext(user: FlagUser): EvaluationContext {
  const userId = typeof user === 'string' ? user : user?.userId;
  return userId ? { targetingKey: userId } : {};
}

function evaluate<T extends JsonValue>(
  client: Client,
  key: string,
  defaultValue: T,
  context: EvaluationContext,
): Promise<EvaluationDetails<T>> {
  if (typeof defaultValue === 'boolean')
    return client.getBooleanDetails(key, defaultValue, context) as Promise<EvaluationDetails<T>>;
  if (typeof defaultValue === 'string')
    return client.getStringDetails(key, defaultValue, context) as Promise<EvaluationDetails<T>>;
  if (typeof defaultValue === 'number')
    return client.getNumberDetails(key, defaultValue, context) as Promise<EvaluationDetails<T>>;
  return client.getObjectDetails<T>(key, defaultValue, context);
}

/**
 * The feature flags of this platform (one per process), made at first use: apps call
 * `featureFlags(platform).isEnabled('checkout.new-flow', currentUser(request))`. Each platform
 * binds its provider to an OpenFeature domain of its own, so two platforms in one process (tests)
 * never share flags or caches.
 */
export function featureFlags(platform: Platform): FeatureFlags {
  const existing = runtimes.get(platform);
  if (existing) return existing;
  const store = new FlagStore({
    db: platform.database.db,
    cache: platform.cache,
    logger: platform.logger,
    settings: flagSettings(platform.config.modules.flags),
  });
  domains += 1;
  const domain = `groundwork-flags-${String(domains)}`;
  OpenFeature.setProvider(domain, new DatabaseFlagProvider(store, platform.config.env));
  const client = OpenFeature.getClient(domain);
  // The SDK's own messages (hook errors) go to the platform's JSON log, not to the console.
  const log = platform.logger.child({ component: 'openfeature' });
  const text = (args: unknown[]) => args.map(String).join(' ');
  client.setLogger({
    error: (...args: unknown[]) => log.error(text(args)),
    warn: (...args: unknown[]) => log.warn(text(args)),
    info: (...args: unknown[]) => log.info(text(args)),
    debug: (...args: unknown[]) => log.debug(text(args)),
  });
  const runtime: Runtime = {
    domain,
    client,
    store,
    async isEnabled(key, user) {
      return client.getBooleanValue(key, false, flagContext(user));
    },
    async getValue(key, defaultValue, user) {
      return (await evaluate(client, key, defaultValue, flagContext(user))).value;
    },
    details(key, defaultValue, user) {
      return evaluate(client, key, defaultValue, flagContext(user));
    },
  };
  runtimes.set(platform, runtime);
  return runtime;
}

/** Unbinds the platform's provider (its domain falls back to the no-op provider). */
export async function stopFlags(platform: Platform): Promise<void> {
  const runtime = runtimes.get(platform);
  if (!runtime) return;
  runtimes.delete(platform);
  await OpenFeature.setProviderAndWait(runtime.domain, NOOP_PROVIDER);
}
