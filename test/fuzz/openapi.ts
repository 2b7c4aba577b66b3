// Ajv and ajv-formats come with Fastify (its validator compiler), not as our own dependencies.
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

/** A JSON Schema as the OpenAPI document carries it (loosely typed: it is data here). */
export type Schema = Record<string, unknown>;

interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required?: boolean;
  schema?: Schema;
}

interface OperationObject {
  parameters?: Parameter[];
  requestBody?: { required?: boolean; content?: Record<string, { schema?: Schema }> };
  responses?: Record<string, { content?: Record<string, { schema?: Schema }> }>;
  security?: Record<string, string[]>[];
}

export interface OpenApiDocument {
  paths: Record<string, Record<string, OperationObject>>;
  components?: { schemas?: Record<string, Schema> };
}

/** One operation of the document: what the generators and the checks need. */
export interface Operation {
  /** `GET /api/v1/admin/users/{id}`: the test name and the `FUZZ_ROUTE` filter. */
  id: string;
  method: string;
  /** The path template, with `{name}` placeholders. */
  path: string;
  pathParams: { name: string; schema: Schema }[];
  queryParams: { name: string; required: boolean; schema: Schema }[];
  /** The JSON body schema, when the operation takes one. */
  body: { required: boolean; schema: Schema } | null;
  /** Documented statuses (`'200'`, `'4XX'`, `'default'`) and their media types. */
  responses: Record<string, string[]>;
  /** JSON pointer of the operation in the document, for its response schemas. */
  pointer: string;
}

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

const escapePointer = (s: string) => s.replaceAll('~', '~0').replaceAll('/', '~1');

/** Every operation of the document, in document order. */
export function operationsOf(doc: OpenApiDocument): Operation[] {
  const out: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (!METHODS.includes(method)) continue;
      const params = op.parameters ?? [];
      const json = op.requestBody?.content?.['application/json']?.schema;
      out.push({
        id: `${method.toUpperCase()} ${path}`,
        method: method.toUpperCase(),
        path,
        pathParams: params
          .filter((p) => p.in === 'path')
          .map((p) => ({ name: p.name, schema: p.schema ?? {} })),
        queryParams: params
          .filter((p) => p.in === 'query')
          .map((p) => ({ name: p.name, required: p.required === true, schema: p.schema ?? {} })),
        body: json ? { required: op.requestBody?.required === true, schema: json } : null,
        responses: Object.fromEntries(
          Object.entries(op.responses ?? {}).map(([status, r]) => [
            status,
            Object.keys(r.content ?? {}),
          ]),
        ),
        pointer: `#/paths/${escapePointer(path)}/${method}`,
      });
    }
  }
  return out;
}

/** The documented response entry for a status: exact (`404`), range (`4XX`), then `default`. */
export function documentedStatus(op: Operation, status: number): string | undefined {
  const exact = String(status);
  const range = `${exact[0] ?? ''}XX`;
  return [exact, range, 'default'].find((k) => k in op.responses);
}

const DOC_ID = 'openapi.json';

/**
 * Response-body validators compiled from the document itself (so `$ref`s to its components
 * resolve): one per operation, status and media type, compiled on first use.
 */
export class ResponseValidators {
  readonly #ajv: Ajv2020;
  readonly #cache = new Map<string, ValidateFunction>();

  constructor(doc: OpenApiDocument) {
    // strict: false: the document carries OpenAPI keywords (`example`, `xml`...) Ajv does not know.
    this.#ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
    const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;
    addFormats(this.#ajv);
    this.#ajv.addSchema({ ...doc, $id: DOC_ID }, DOC_ID);
  }

  /**
   * Why a JSON request body must be refused (4xx), or null when the route may accept it: the
   * document's body schema refuses it (no coercion: bodies are validated strictly; unknown
   * properties are not counted, the server strips them), or it holds what issue 12 makes every
   * route refuse: NUL in a string or key, a number that is not finite.
   */
  bodyRefusal(op: Operation, value: unknown): string | null {
    const nul = findInput(value, (v) => typeof v === 'string' && v.includes('\u0000'));
    if (nul !== null) return `NUL in a string or key at ${nul}`;
    const infinite = findInput(value, (v) => typeof v === 'number' && !Number.isFinite(v));
    if (infinite !== null) return `a number that is not finite at ${infinite}`;
    const pointer = `${op.pointer}/requestBody/content/application~1json/schema`;
    let validate = this.#cache.get(pointer);
    if (!validate) {
      validate = this.#ajv.compile({ $ref: `${DOC_ID}${pointer}` });
      this.#cache.set(pointer, validate);
    }
    if (validate(value)) return null;
    const errors = (validate.errors ?? []).filter((e) => e.keyword !== 'additionalProperties');
    return errors.length > 0 ? `the body schema refuses it: ${this.#ajv.errorsText(errors)}` : null;
  }

  /** Validates a parsed body; returns the errors as text, or null when it matches. */
  check(op: Operation, statusKey: string, mediaType: string, body: unknown): string | null {
    const pointer = `${op.pointer}/responses/${escapePointer(statusKey)}/content/${escapePointer(mediaType)}/schema`;
    let validate = this.#cache.get(pointer);
    if (!validate) {
      validate = this.#ajv.compile({ $ref: `${DOC_ID}${pointer}` });
      this.#cache.set(pointer, validate);
    }
    if (validate(body)) return null;
    return this.#ajv.errorsText(validate.errors, { separator: '; ' });
  }
}

/** The JSON pointer of the first value (or key) in `value` that `bad` flags, or null. */
function findInput(value: unknown, bad: (v: unknown) => boolean, path = ''): string | null {
  if (bad(value)) return path || '/';
  if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (bad(k)) return `${path}/${k}`;
      const found = findInput(v, bad, `${path}/${k}`);
      if (found !== null) return found;
    }
  }
  return null;
}
