import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import type { Static, TObject } from 'typebox';
import { ConfigError, type ConfigIssue, type SliceContext } from '../config/index.ts';
import type { MigrationSet } from '../db/index.ts';
import type { EventSubscriber, EventType } from '../events/index.ts';
import type { AnyJob } from '../jobs/index.ts';
import type { MailTemplate } from '../mail/index.ts';
import type { FilePurpose } from './file-purpose.ts';
import type { Platform } from './platform.ts';

export type { FileImageFormat, FilePurpose } from './file-purpose.ts';
export type { Platform, PlatformExtensions } from './platform.ts';

/** The Fastify instance a module's routes get: the TypeBox type provider types requests by their schemas. */
export type ModuleApp = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

/** What a module's hooks and routes receive: the platform's services and the module's own settings. */
export interface ModuleContext<C = unknown> {
  readonly platform: Platform;
  /** The module's settings (`config`), parsed and frozen; an empty object without a schema. */
  readonly config: C;
}

/** A `resource:action` permission a module declares, and the built-in roles that get it by default. */
export interface ModulePermission {
  readonly name: string;
  readonly description: string;
  /** Built-in roles (`admin`, `moderator`, `user`) granted it once, when it first appears. */
  readonly roles?: readonly string[];
}

/**
 * A realtime channel as the module declares it: made by the realtime area's `defineChannel`
 * (which adds its authorisation); named here only, so this area does not import that one.
 */
export interface ModuleChannel {
  readonly name: string;
  readonly description: string;
}

/** Everything a platform area with routes, or an app, brings: one declaration. */
export interface Module<C = unknown> {
  /** Kebab-case name: `APPS=` selects apps by it; its settings are prefixed by it in UPPER_SNAKE. */
  readonly name: string;
  readonly description: string;
  /** Modules this one needs registered first (unknown names and cycles refuse to start). */
  readonly dependsOn?: readonly string[];
  /** The module's settings: a TypeBox object of `<NAME>_*` variables (see `configPrefix`). */
  readonly config?: TObject;
  /**
   * The prefixes its settings use, when not its name's (identity keeps `AUTH_`, `PASSWORD_`,
   * `ARGON2_`); a setting declared by two modules, or by a module and the platform, refuses to start.
   */
  readonly configPrefixes?: readonly string[];
  /** Checks across its settings once each has its type (`key` and `message` per problem). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly checkConfig?: (values: any, context: SliceContext) => readonly ConfigIssue[];
  /** Turns its checked variables into the settings its hooks get as `config` (default: as is). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly parseConfig?: (values: any, context: SliceContext) => C;
  /** OpenAPI tags its routes use (default: one tag named after the module). */
  readonly tags?: readonly { name: string; description: string }[];
  /** The module's migrations (`YYYYMMDDHHMM_module_what`), merged into one ordered history. */
  readonly migrations?: MigrationSet;
  /** Permissions it declares; applied at start, idempotently; listed by `GET /api/v1/admin/permissions`. */
  readonly permissions?: readonly ModulePermission[];
  /** Its job types (or a function of the settings that makes them); handlers get `ctx.platform`. */
  readonly jobs?:
    | readonly AnyJob[]
    | ((context: { platform: Platform['config']; config: C }) => readonly AnyJob[]);
  /** Its mail templates (`defineMailTemplate`), sent with `platform.mail.send`. */
  readonly mailTemplates?: readonly MailTemplate[];
  /** The domain event types it publishes (`defineEvent`); names are unique across modules. */
  readonly events?: readonly EventType[];
  /** Its in-process consumers of committed events (`defineSubscriber`); names unique too. */
  readonly subscribers?: readonly EventSubscriber[];
  /** The kinds of file it accepts through the files area (`spots.picture`); names unique too. */
  readonly filePurposes?: readonly FilePurpose[];
  /** Its realtime channels (the realtime area's `defineChannel`: `authors`, `user:*`); names unique too. */
  readonly channels?: readonly ModuleChannel[];
  /** Where `routes` are mounted (default `/api/v1`; `''` for the root). */
  readonly prefix?: string;
  /**
   * Runs on the root instance before the traffic hooks (rate limits, idempotency, caching):
   * the place for hooks every route needs, such as authentication (the rate limits key on the
   * user it sets). Decorations made here are seen by every module's routes.
   */
  register?(app: FastifyInstance, context: ModuleContext<C>): Promise<void> | void;
  /** Registers the module's routes, under `prefix`, after the traffic hooks. */
  routes?(app: ModuleApp, context: ModuleContext<C>): Promise<void>;
  /** Runs once the app is ready (after every module registered). */
  onStart?(context: ModuleContext<C>): Promise<void> | void;
  /** Runs when the app closes, in reverse dependency order. */
  onStop?(context: ModuleContext<C>): Promise<void> | void;
  /** Whether the module is mounted in this configuration (default: always). */
  enabled?(config: Platform['config']): boolean;
}

/** Any module, whatever its settings. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyModule = Module<any>;

const NAME = /^[a-z][a-z0-9-]*$/;
const PERMISSION = /^[a-z][a-z0-9-]{0,47}:([a-z][a-z0-9-]{0,47}|\*)$/;

/** `shop` → `SHOP_`, `dev-mail` → `DEV_MAIL_`: the prefix of a module's settings. */
export function configPrefix(name: string): string {
  return `${name.replace(/-/g, '_').toUpperCase()}_`;
}

/**
 * Declares a module (checks its shape once, at import). The settings type comes from `config`:
 * `defineModule({ name: 'shop', config: Type.Object({ SHOP_CURRENCY: ... }), routes(app, { config }) {...} })`.
 */
export function defineModule<S extends TObject = TObject, C = Static<S>>(
  module: Omit<Module<C>, 'config' | 'checkConfig' | 'parseConfig'> & {
    readonly config?: S;
    readonly checkConfig?: (values: Static<S>, context: SliceContext) => readonly ConfigIssue[];
    readonly parseConfig?: (values: Static<S>, context: SliceContext) => C;
  },
): Module<C> {
  const { name } = module;
  if (!NAME.test(name)) throw new Error(`module name ${name} must be kebab-case`);
  const prefixes = module.configPrefixes ?? [configPrefix(name)];
  for (const key of Object.keys(module.config?.properties ?? {})) {
    if (!prefixes.some((p) => key.startsWith(p)) || !/^[A-Z][A-Z0-9_]*$/.test(key))
      throw new Error(
        `module ${name}: setting ${key} must be UPPER_SNAKE and start with ${prefixes.join(' or ')}`,
      );
  }
  for (const p of module.permissions ?? []) {
    if (!PERMISSION.test(p.name))
      throw new Error(`module ${name}: permission ${p.name} is not resource:action`);
  }
  return module;
}

/** The module's job types for this configuration. */
export function moduleJobs(module: AnyModule, config: Platform['config']): readonly AnyJob[] {
  const jobs = module.jobs;
  if (typeof jobs === 'function')
    return jobs({ platform: config, config: config.modules[module.name] ?? {} });
  return jobs ?? [];
}

/**
 * The modules in registration order: each after those it depends on (a stable topological
 * order, otherwise as listed). An unknown dependency or a cycle is an error naming them.
 */
export function orderModules<M extends AnyModule>(modules: readonly M[]): M[] {
  const byName = new Map<string, M>();
  for (const m of modules) {
    if (byName.has(m.name)) throw new Error(`module ${m.name} is listed twice`);
    byName.set(m.name, m);
  }
  for (const m of modules) {
    const unknown = (m.dependsOn ?? []).filter((d) => !byName.has(d));
    if (unknown.length > 0)
      throw new Error(
        `module ${m.name} depends on ${unknown.join(', ')}, which ${unknown.length > 1 ? 'are' : 'is'} not enabled`,
      );
  }
  const ordered: M[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (m: M, path: string[]): void => {
    const seen = state.get(m.name);
    if (seen === 'done') return;
    if (seen === 'visiting')
      throw new Error(`modules depend on each other in a cycle: ${[...path, m.name].join(' → ')}`);
    state.set(m.name, 'visiting');
    for (const d of m.dependsOn ?? []) visit(byName.get(d) as M, [...path, m.name]);
    state.set(m.name, 'done');
    ordered.push(m);
  };
  for (const m of modules) visit(m, []);
  return ordered;
}

/** The modules enabled by `APPS` (`all` or a list); unknown names are a configuration error. */
export function selectApps<M extends AnyModule>(
  available: readonly M[],
  wanted: readonly string[] | 'all',
): M[] {
  if (wanted === 'all') return [...available];
  const byName = new Map(available.map((m) => [m.name, m]));
  const unknown = wanted.filter((n) => !byName.has(n));
  if (unknown.length > 0) {
    const known = [...byName.keys()].join(', ') || 'none';
    throw new ConfigError([
      { key: 'APPS', message: `unknown apps: ${unknown.join(', ')} (known: ${known})` },
    ]);
  }
  return wanted.map((n) => byName.get(n) as M);
}

/** An app's module: the same shape as every module. */
export type AppModule = AnyModule;

/** Declares an app's module (`defineModule`; kept for the apps and fixtures written before it). */
export const defineApp = defineModule;
