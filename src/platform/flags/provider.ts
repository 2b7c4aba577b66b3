import {
  FlagNotFoundError,
  TypeMismatchError,
  type EvaluationContext,
  type JsonValue,
  type Provider,
  type ResolutionDetails,
} from '@openfeature/server-sdk';
import type { AppEnv } from '../config/index.ts';
import { evaluateFlag, type FlagType } from './definition.ts';
import type { FlagStore } from './store.ts';

/**
 * The OpenFeature provider of the platform: flags from the database (through `FlagStore`'s
 * caches), evaluated for this process's `APP_ENV` and the context's `targetingKey` (the user id).
 * A missing flag is `FLAG_NOT_FOUND` and a flag of another type `TYPE_MISMATCH`: the SDK then
 * answers the caller's default, as it does when the store cannot be read (`GENERAL`).
 */
export class DatabaseFlagProvider implements Provider {
  readonly metadata = { name: 'groundwork-database' } as const;
  readonly runsOn = 'server';
  readonly #store: FlagStore;
  readonly #env: AppEnv;

  constructor(store: FlagStore, env: AppEnv) {
    this.#store = store;
    this.#env = env;
  }

  async #resolve<T>(
    key: string,
    type: FlagType,
    defaultValue: T,
    context: EvaluationContext,
  ): Promise<ResolutionDetails<T>> {
    const flag = await this.#store.get(key);
    if (!flag) throw new FlagNotFoundError(`flag ${key} does not exist`);
    if (flag.type !== type)
      throw new TypeMismatchError(`flag ${key} is a ${flag.type} flag, not ${type}`);
    const result = evaluateFlag(flag, this.#env, context.targetingKey);
    if (result.reason === 'DISABLED') return { value: defaultValue, reason: 'DISABLED' };
    return {
      value: result.value as T,
      variant: result.variant ?? undefined,
      reason: result.reason,
    };
  }

  resolveBooleanEvaluation(key: string, defaultValue: boolean, context: EvaluationContext) {
    return this.#resolve(key, 'boolean', defaultValue, context);
  }

  resolveStringEvaluation(key: string, defaultValue: string, context: EvaluationContext) {
    return this.#resolve(key, 'string', defaultValue, context);
  }

  resolveNumberEvaluation(key: string, defaultValue: number, context: EvaluationContext) {
    return this.#resolve(key, 'number', defaultValue, context);
  }

  resolveObjectEvaluation<T extends JsonValue>(
    key: string,
    defaultValue: T,
    context: EvaluationContext,
  ) {
    return this.#resolve(key, 'object', defaultValue, context);
  }
}
