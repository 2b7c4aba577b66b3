import type { Static, TSchema } from 'typebox';
import { Compile, type Validator } from 'typebox/compile';
import type { EventSubscriber, EventType } from './types.ts';

/** `area.thing.happened`: 2 to 4 lowercase dotted segments (`a-z 0-9 _`, each starting with a letter). */
export const EVENT_TYPE_PATTERN = '^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*){1,3}$';
const EVENT_TYPE = new RegExp(EVENT_TYPE_PATTERN);
/** The same `resource:action` shape as the modules' permissions. */
const PERMISSION = /^[a-z][a-z0-9-]{0,47}:([a-z][a-z0-9-]{0,47}|\*)$/;
/** Subscriber names: `module.what`, lowercase, dotted or dashed. */
// eslint-disable-next-line security/detect-unsafe-regex -- each repeated group starts with a separator its class excludes: linear
const SUBSCRIBER = /^[a-z][a-z0-9]*([._-][a-z0-9]+)*$/;

const validators = new WeakMap<EventType, Validator>();

/** The compiled payload validator of an event type (compiled once per type). */
function validatorOf(type: EventType): Validator {
  let validator = validators.get(type);
  if (!validator) {
    validator = Compile(type.payload);
    validators.set(type, validator);
  }
  return validator;
}

/** Where and why `data` does not match the type's payload schema; empty when it matches. */
export function eventPayloadErrors(
  type: EventType,
  data: unknown,
): { path: string; message: string }[] {
  const validator = validatorOf(type);
  if (validator.Check(data)) return [];
  return validator.Errors(data).map((e) => ({ path: e.instancePath || '/', message: e.message }));
}

/** A payload that does not match its event type's schema: a bug in the publisher, never stored. */
export class InvalidEventPayloadError extends Error {
  readonly type: string;
  readonly errors: { path: string; message: string }[];
  constructor(type: string, errors: { path: string; message: string }[]) {
    super(
      `event ${type}: payload does not match its schema: ${errors
        .map((e) => `${e.path} ${e.message}`)
        .join('; ')}`,
    );
    this.name = 'InvalidEventPayloadError';
    this.type = type;
    this.errors = errors;
  }
}

/**
 * Declares a domain event type: its name (`area.thing.happened`), payload version (default 1),
 * TypeBox payload schema, an example payload (checked against the schema here, at import) and
 * who may see events of the type. Modules list theirs in `events`.
 */
export function defineEvent<S extends TSchema>(definition: {
  type: string;
  version?: number;
  description: string;
  payload: S;
  example: Static<S>;
  visibility: { permission: string; ownerVisible?: boolean };
}): EventType<Static<S>> {
  const { type } = definition;
  const fail = (message: string): never => {
    throw new Error(`event ${type}: ${message}`);
  };
  if (!EVENT_TYPE.test(type))
    fail('the name must be `area.thing.happened`: 2 to 4 lowercase dotted segments');
  const version = definition.version ?? 1;
  if (!Number.isInteger(version) || version < 1) fail('version must be an integer >= 1');
  if (definition.description.trim() === '') fail('a description is required');
  if (!PERMISSION.test(definition.visibility.permission))
    fail(`visibility permission ${definition.visibility.permission} is not resource:action`);
  const event: EventType<Static<S>> = Object.freeze({
    type,
    version,
    description: definition.description,
    payload: definition.payload,
    example: definition.example,
    visibility: Object.freeze({
      permission: definition.visibility.permission,
      ownerVisible: definition.visibility.ownerVisible ?? true,
    }),
  });
  const errors = eventPayloadErrors(event, definition.example);
  if (errors.length > 0)
    fail(
      `the example does not match the payload schema: ${errors
        .map((e) => `${e.path} ${e.message}`)
        .join('; ')}`,
    );
  return event;
}

/**
 * Declares an in-process subscriber (checks its name and the types it lists). Modules list theirs
 * in `subscribers`; the dispatcher hands each committed event of those types to `handle`.
 */
export function defineSubscriber(subscriber: EventSubscriber): EventSubscriber {
  const { name, events } = subscriber;
  if (!SUBSCRIBER.test(name))
    throw new Error(`event subscriber ${name}: the name must be like \`module.what\``);
  if (events !== '*') {
    if (events.length === 0)
      throw new Error(`event subscriber ${name}: list at least one event type, or '*'`);
    for (const type of events)
      if (!EVENT_TYPE.test(type))
        throw new Error(`event subscriber ${name}: ${type} is not an event type name`);
  }
  return subscriber;
}

/** Whether a subscriber wants events of this type. */
export function subscribes(subscriber: EventSubscriber, type: string): boolean {
  return subscriber.events === '*' || subscriber.events.includes(type);
}

/**
 * The event catalog as Markdown (for the docs): one section per type with its description,
 * version, visibility, payload JSON Schema and example.
 */
export function eventCatalog(types: readonly EventType[]): string {
  const out: string[] = [];
  for (const t of [...types].sort((a, b) => a.type.localeCompare(b.type))) {
    const who = t.visibility.ownerVisible
      ? `holders of \`${t.visibility.permission}\`, and the user it concerns`
      : `holders of \`${t.visibility.permission}\``;
    out.push(
      `### \`${t.type}\` (version ${t.version})`,
      '',
      t.description,
      '',
      `Visible to: ${who}.`,
      '',
      'Payload schema:',
      '',
      '```json',
      JSON.stringify(t.payload, null, 2),
      '```',
      '',
      'Example:',
      '',
      '```json',
      JSON.stringify(t.example, null, 2),
      '```',
      '',
    );
  }
  return out.join('\n');
}
