import type { Static, TSchema } from 'typebox';
import type { Platform } from '../modules/index.ts';

/** What a command's handler gets besides its payload: the caller, as an HTTP route would. */
export interface CommandContext {
  /** The signed-in user; null when the command allows anonymous callers. */
  readonly userId: string | null;
  readonly sessionId: string | null;
  readonly amr: readonly string[];
  /** One per command (`ws-<connection>-<n>`), in logs and audit records as HTTP's request id. */
  readonly requestId: string;
  readonly ip: string;
  readonly platform: Platform;
}

/**
 * A WebSocket command (`{"type":"command","name":...}`): the same service call an HTTP route
 * makes, its payload validated like a request body (the same 422 `VALIDATION_FAILED` problem,
 * paths under `/body`), its permission checked like a route's `config.permission`.
 */
export interface CommandDefinition<S extends TSchema = TSchema> {
  /** `area.action`, e.g. `authors.create`. */
  readonly name: string;
  readonly description: string;
  /** The permission the caller needs (401 anonymous, 403 without it, as on HTTP). */
  readonly permission?: string;
  /** Whether a signed-in caller is needed (default: yes). */
  readonly auth?: 'required' | 'optional';
  readonly payload: S;
  handle(payload: Static<S>, context: CommandContext): Promise<unknown>;
}

// eslint-disable-next-line security/detect-unsafe-regex -- each repeated group starts with '.', outside its class: linear
const NAME = /^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*){1,3}$/;

/** Declares a command (checks its name at import). */
export function defineCommand<S extends TSchema>(
  definition: CommandDefinition<S>,
): CommandDefinition<S> {
  if (!NAME.test(definition.name))
    throw new Error(`command ${definition.name}: the name must be \`area.action\``);
  return Object.freeze({ ...definition });
}
