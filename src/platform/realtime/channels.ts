import type { TSchema } from 'typebox';
import type { Platform } from '../modules/index.ts';

/** Who is asking, for a channel's authorisation. */
export interface ChannelContext {
  /** The signed-in user; null for an anonymous connection. */
  readonly userId: string | null;
  readonly sessionId: string | null;
  /** The session's authentication methods (`otp` after MFA). */
  readonly amr: readonly string[];
  /** What the channel's `*` matched (`user:0190…` → `0190…`); '' for a channel without one. */
  readonly param: string;
  readonly platform: Platform;
}

/**
 * A channel a module declares: a fixed name (`authors`, `spots.public`) or a family with one
 * trailing parameter (`user:*`, `publishing.post:*`). `authorize` runs at every subscribe and
 * again for the user's live subscriptions when identity says their roles changed.
 */
export interface ChannelDefinition {
  /** `area.name`, optionally ending with `:*` (one parameter of `A-Z a-z 0-9 . _ -`, 1 to 128). */
  readonly name: string;
  readonly description: string;
  /** Anonymous connections may subscribe (the default needs a signed-in user). */
  readonly public?: boolean;
  /** A permission the subscriber needs (checked before `authorize`). */
  readonly permission?: string;
  /** Whether this subscriber may subscribe (after `public` and `permission`); default yes. */
  authorize?(context: ChannelContext): boolean | Promise<boolean>;
  /**
   * Clients may `publish` on the channel when set: it says whether this one may; `data` must match
   * `publishSchema` (default: any JSON). Absent: only the server publishes.
   */
  canPublish?(context: ChannelContext): boolean | Promise<boolean>;
  readonly publishSchema?: TSchema;
}

// eslint-disable-next-line security/detect-unsafe-regex -- each repeated group starts with '.', outside its class: linear
const FAMILY = /^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*(:\*)?$/;
/** A concrete channel name: the declared base, and a parameter for families. */
// eslint-disable-next-line security/detect-unsafe-regex -- each repeated group starts with '.', outside its class: linear
const CONCRETE = /^([a-z][a-z0-9_-]*(?:\.[a-z][a-z0-9_-]*)*)(?::([A-Za-z0-9._-]{1,128}))?$/;
export const MAX_CHANNEL_LENGTH = 200;

/** Declares a channel (checks its name at import). */
export function defineChannel(definition: ChannelDefinition): ChannelDefinition {
  if (!FAMILY.test(definition.name) || definition.name.length > 64)
    throw new Error(
      `channel ${definition.name}: the name must be \`area.name\` or \`area.name:*\` (lowercase)`,
    );
  if (definition.public && definition.permission)
    throw new Error(`channel ${definition.name}: a public channel needs no permission`);
  return Object.freeze({ ...definition });
}

/** The channels of the enabled modules, by name; finds the declaration of a concrete name. */
export class ChannelRegistry {
  readonly #exact = new Map<string, ChannelDefinition>();
  readonly #families = new Map<string, ChannelDefinition>();

  add(definition: ChannelDefinition, owner = 'a module'): void {
    const family = definition.name.endsWith(':*');
    const base = family ? definition.name.slice(0, -2) : definition.name;
    const map = family ? this.#families : this.#exact;
    if (map.has(base)) throw new Error(`channel ${definition.name} is declared twice (${owner})`);
    map.set(base, definition);
  }

  /** The declaration and parameter of a concrete channel name, or undefined. */
  resolve(channel: string): { definition: ChannelDefinition; param: string } | undefined {
    if (channel.length > MAX_CHANNEL_LENGTH) return undefined;
    const match = CONCRETE.exec(channel);
    if (!match) return undefined;
    const [, base = '', param] = match;
    if (param === undefined) {
      const definition = this.#exact.get(base);
      return definition ? { definition, param: '' } : undefined;
    }
    const definition = this.#families.get(base);
    return definition ? { definition, param } : undefined;
  }

  list(): ChannelDefinition[] {
    return [...this.#exact.values(), ...this.#families.values()];
  }
}

const bound = new WeakMap<object, ChannelRegistry>();

/**
 * Collects the `channels` the enabled modules declare (called where the modules are chosen, as
 * file purposes are); two modules declaring one channel refuse to start.
 */
export function bindChannels(
  config: object,
  modules: readonly { name: string; channels?: readonly { name: string }[] }[],
): ChannelRegistry {
  const registry = new ChannelRegistry();
  // A module's channels are made by `defineChannel` (the modules area names only their shape).
  for (const m of modules)
    for (const c of m.channels ?? []) registry.add(c as ChannelDefinition, m.name);
  bound.set(config, registry);
  return registry;
}

/** The channels bound to this configuration (an empty registry when none were bound). */
export function channelsOf(config: object): ChannelRegistry {
  let registry = bound.get(config);
  if (!registry) {
    registry = new ChannelRegistry();
    bound.set(config, registry);
  }
  return registry;
}
