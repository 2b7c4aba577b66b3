import type { Platform } from '../../platform/modules/index.ts';
import type {
  PlatformAdapter,
  PlatformId,
  PublishingAccounts,
  PublishingPostHooks,
} from './platforms/types.ts';
import type { PublishingSettings } from './settings.ts';

/** The publishing app's services for one platform: made once, shared by routes and jobs. */
export interface PublishingRuntime {
  readonly platform: Platform;
  readonly settings: PublishingSettings;
  /** The enabled platforms' adapters. */
  readonly adapters: ReadonlyMap<PlatformId, PlatformAdapter>;
  readonly accounts: PublishingAccounts;
  readonly hooks: PublishingPostHooks;
}

type Factory = (platform: Platform) => PublishingRuntime;

/**
 * Who builds a runtime: `runtime.ts` provides it when loaded (the module's `index.ts` loads it).
 * Kept apart so that jobs and routes of both halves find the runtime through this file, which
 * imports neither half: no import cycle between the halves and the runtime that wires them.
 */
let factory: Factory | undefined;
const runtimes = new WeakMap<Platform, PublishingRuntime>();

export function provideRuntimeFactory(make: Factory): void {
  factory = make;
}

/** The runtime of `platform` (routes and job handlers alike reach it from `platform`). */
export function publishingRuntime(platform: Platform): PublishingRuntime {
  const existing = runtimes.get(platform);
  if (existing) return existing;
  if (!factory) throw new Error('publishing: the runtime is not wired (import the module first)');
  const runtime = factory(platform);
  runtimes.set(platform, runtime);
  return runtime;
}
