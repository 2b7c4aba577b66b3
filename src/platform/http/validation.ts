import AjvCompiler from '@fastify/ajv-compiler';

type Schema = Record<string, unknown>;
/** The part of Ajv's API used here (the instance comes from Fastify's own compiler). */
interface Ajv {
  addKeyword(definition: {
    keyword: string;
    type?: string;
    schemaType: string;
    validate: KeywordValidate;
  }): unknown;
}

/** Marks a string schema: the value may not contain U+0000 (PostgreSQL text cannot hold it). */
const NO_NUL = 'x-gw-no-nul';
/** Marks an object schema: no key may contain U+0000. */
const NO_NUL_KEYS = 'x-gw-no-nul-keys';
/** Marks a schema accepting anything (`{}`): no string or key anywhere inside contains U+0000. */
const NO_NUL_DEEP = 'x-gw-no-nul-deep';
/** Marks a number or integer schema: the value is finite. */
const FINITE = 'x-gw-finite';

const NUL_MESSAGE = 'must not contain NUL (U+0000)';

interface KeywordError {
  keyword: string;
  message: string;
  params: Record<string, unknown>;
  instancePath?: string;
}
type KeywordValidate = ((schema: unknown, data: never) => boolean) & {
  errors?: KeywordError[] | null;
};

function failing(
  validate: KeywordValidate,
  keyword: string,
  message: string,
  params: Record<string, unknown> = {},
): false {
  validate.errors = [{ keyword, message, params }];
  return false;
}

const noNul: KeywordValidate = (_schema, data: string) =>
  !data.includes('\0') || failing(noNul, NO_NUL, NUL_MESSAGE);

const noNulKeys: KeywordValidate = (_schema, data: Record<string, unknown>) => {
  // `propertyName` puts the key in the error's path (`/body/<key>`).
  for (const key in data)
    if (key.includes('\0'))
      return failing(noNulKeys, NO_NUL_KEYS, NUL_MESSAGE, { propertyName: key });
  return true;
};

const noNulDeep: KeywordValidate = (_schema, data: unknown) =>
  nulPath(data) === null || failing(noNulDeep, NO_NUL_DEEP, NUL_MESSAGE);

/** JSON Pointer escaping of one key (RFC 6901). */
const pointer = (key: string) => key.replaceAll('~', '~0').replaceAll('/', '~1');

/**
 * The JSON Pointer of the first key or string in a parsed body that holds NUL, or null. Run
 * before the schema: unknown properties are dropped by validation, and a body carrying NUL in one
 * of them is refused like any other (a NUL never passes silently, wherever it is).
 */
function nulPath(body: unknown): string | null {
  // Iterative: a body may nest far deeper than the call stack (1 MB of `[`).
  const stack: [unknown, string][] = [[body, '']];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [value, path] = next;
    if (typeof value === 'string') {
      if (value.includes('\0')) return path;
    } else if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push([value[i], `${path}/${i}`]);
    } else if (typeof value === 'object' && value !== null) {
      for (const key in value) {
        const at = `${path}/${pointer(key)}`;
        if (key.includes('\0')) return at;
        stack.push([(value as Record<string, unknown>)[key], at]);
      }
    }
  }
  return null;
}

type ValidateFunction = ((data: unknown) => unknown) & { errors?: unknown };

/** A body validator that refuses NUL anywhere in the body, then applies the route's schema. */
function refusingNulAnywhere(validate: ValidateFunction): ValidateFunction {
  const checked: ValidateFunction = (data) => {
    const path = nulPath(data);
    if (path !== null) {
      checked.errors = [
        { keyword: NO_NUL, instancePath: path, schemaPath: '#', params: {}, message: NUL_MESSAGE },
      ];
      return false;
    }
    const result = validate(data);
    checked.errors = validate.errors;
    return result;
  };
  return checked;
}

// Ajv's coercion turns "Infinity" and "1e309" into Infinity and then skips `maximum` for it
// (its range checks only run on finite numbers), so finiteness is checked on its own.
const finite: KeywordValidate = (_schema, data: unknown) =>
  typeof data !== 'number' ||
  Number.isFinite(data) ||
  failing(finite, FINITE, 'must be a finite number');

function addInputKeywords(ajv: Ajv): void {
  ajv.addKeyword({ keyword: NO_NUL, type: 'string', schemaType: 'boolean', validate: noNul });
  ajv.addKeyword({
    keyword: NO_NUL_KEYS,
    type: 'object',
    schemaType: 'boolean',
    validate: noNulKeys,
  });
  ajv.addKeyword({ keyword: NO_NUL_DEEP, schemaType: 'boolean', validate: noNulDeep });
  // Not `type: 'number'`: Ajv runs number keywords only for finite numbers.
  ajv.addKeyword({ keyword: FINITE, schemaType: 'boolean', validate: finite });
}

const SUBSCHEMA_MAPS = [
  'properties',
  'patternProperties',
  '$defs',
  'definitions',
  'dependentSchemas',
];
const SUBSCHEMAS = [
  'additionalProperties',
  'items',
  'additionalItems',
  'unevaluatedProperties',
  'unevaluatedItems',
  'then',
  'else',
];
const SUBSCHEMA_LISTS = ['anyOf', 'oneOf', 'allOf', 'prefixItems', 'items'];
/** Keywords that make a schema something other than "anything" (no deep check needed). */
const CONSTRAINING = ['type', 'anyOf', 'oneOf', 'allOf', 'enum', 'const', '$ref', 'not', 'if'];

function typesOf(schema: Schema): readonly unknown[] {
  const type = schema.type;
  return Array.isArray(type) ? type : type === undefined ? [] : [type];
}

/**
 * A copy of an input schema with the platform's checks added to every subschema: strings and
 * object keys without NUL (unless `nul` is false: bodies are scanned whole instead), numbers finite, and "anything" subschemas checked deeply. Subschemas
 * under `not`, `if`, `contains` and `propertyNames` are left alone: a restriction added there
 * would invert or change their meaning. The route's own schema object is not touched (OpenAPI
 * documents it as written).
 */
export function hardenInputSchema(schema: unknown, nul = true): unknown {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) return schema;
  const source = schema as Schema;
  const out: Schema = { ...source };
  const types = typesOf(source);
  if (nul && types.includes('string')) out[NO_NUL] = true;
  if (nul && types.includes('object')) out[NO_NUL_KEYS] = true;
  if (types.includes('number') || types.includes('integer')) out[FINITE] = true;
  if (nul && !CONSTRAINING.some((k) => k in source)) out[NO_NUL_DEEP] = true;
  for (const key of SUBSCHEMA_MAPS) {
    const map = source[key];
    if (typeof map === 'object' && map !== null && !Array.isArray(map)) {
      out[key] = Object.fromEntries(
        Object.entries(map).map(([name, sub]) => [name, hardenInputSchema(sub, nul)]),
      );
    }
  }
  for (const key of SUBSCHEMAS) {
    const sub = source[key];
    if (typeof sub === 'object' && sub !== null && !Array.isArray(sub))
      out[key] = hardenInputSchema(sub, nul);
  }
  for (const key of SUBSCHEMA_LISTS) {
    const list = source[key];
    if (Array.isArray(list)) out[key] = list.map((sub) => hardenInputSchema(sub, nul));
  }
  return out;
}

const COMMON_OPTIONS = {
  allErrors: true,
  // Unknown properties of objects closed with `additionalProperties: false` are dropped.
  removeAdditional: true,
  useDefaults: true,
} as const;

interface RouteSchemaDefinition {
  schema: unknown;
  method: string;
  url: string;
  httpPart?: string;
}
type BuildFromPool = (
  externalSchemas: Record<string, unknown>,
  options: { customOptions: Record<string, unknown>; plugins: ((ajv: Ajv) => void)[] },
) => (route: RouteSchemaDefinition) => unknown;

/**
 * The validator compilers (Fastify's `schemaController.compilersFactory.buildValidator`): JSON
 * bodies are validated strictly (`true` is not a string), query strings, path parameters and
 * headers are coerced from their text (`?limit=20` is a number, `?ids=a` an array). Both refuse
 * NUL in any string or key and non-finite numbers (422, naming the field), so such input never
 * reaches a handler or PostgreSQL. Both are Fastify's own compiler (`@fastify/ajv-compiler`:
 * formats, `fast-uri`), one Ajv instance per option set.
 */
export function validatorFactory(): (
  externalSchemas: Record<string, unknown>,
) => (route: RouteSchemaDefinition) => unknown {
  const fromPool = AjvCompiler() as unknown as BuildFromPool;
  return (externalSchemas) => {
    const strict = fromPool(externalSchemas, {
      customOptions: { ...COMMON_OPTIONS, coerceTypes: false },
      plugins: [addInputKeywords],
    });
    const coercing = fromPool(externalSchemas, {
      customOptions: { ...COMMON_OPTIONS, coerceTypes: 'array' },
      plugins: [addInputKeywords],
    });
    return (route) => {
      // A body is scanned for NUL whole before validation, so its schema needs only finiteness.
      if (route.httpPart !== 'body')
        return coercing({ ...route, schema: hardenInputSchema(route.schema) });
      const schema = hardenInputSchema(route.schema, false);
      return refusingNulAnywhere(strict({ ...route, schema }) as ValidateFunction);
    };
  };
}
