// Examples for the OpenAPI document: a small deterministic sampler over JSON Schema (what TypeBox
// emits), so every operation shows a request and a response body even when its route gives none.
// Deterministic on purpose: the document is generated twice (live and `npm run openapi`) and the
// client generator compares them; a random sampler would make every build differ.

import { errorCodeDef } from './errors.ts';
import { problemType } from './problem.ts';

type Schema = Record<string, unknown>;

/** Fixed values per string format: readable, valid for Ajv's formats, the same in every build. */
const FORMAT_SAMPLES: Record<string, string> = {
  uuid: '0193b6f2-3c4e-7a1b-9f00-2a1d3e4f5a6b',
  'date-time': '2026-01-15T09:30:00.000Z',
  date: '2026-01-15',
  time: '09:30:00Z',
  duration: 'PT1H',
  email: 'ada@example.com',
  'idn-email': 'ada@example.com',
  uri: 'https://example.com/',
  url: 'https://example.com/',
  iri: 'https://example.com/',
  'uri-reference': '/path',
  'uri-template': 'https://example.com/{id}',
  hostname: 'example.com',
  'idn-hostname': 'example.com',
  ipv4: '192.0.2.1',
  ipv6: '2001:db8::1',
  byte: 'aGVsbG8=',
  'json-pointer': '/body/name',
  regex: '^[a-z]+$',
};

/** Hints by property name for strings with no format or pattern (kept only when they fit). */
const NAME_SAMPLES: [RegExp, string][] = [
  [/email/i, 'ada@example.com'],
  [/ur[li]$/i, 'https://example.com/'],
  [/^username$/i, 'ada'],
  [/^(title|name|label)$/i, 'Example'],
  [/^slug$/i, 'example'],
  [/password/i, 'correct horse battery staple'],
  [/^(description|detail|message)$/i, 'An example.'],
];

export interface SampleOptions {
  /** Resolves a `$ref` (`#/components/schemas/Problem`) against the document. */
  resolve?: (ref: string) => Schema | undefined;
}

/** What a schema says its example is, when it says (`examples`, `example`, `default`, `const`). */
function declared(schema: Schema): { value: unknown } | undefined {
  if (Array.isArray(schema.examples) && schema.examples.length > 0)
    return { value: schema.examples[0] };
  if ('example' in schema && schema.example !== undefined) return { value: schema.example };
  if ('const' in schema) return { value: schema.const };
  if ('default' in schema && schema.default !== undefined) return { value: schema.default };
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return { value: schema.enum[0] };
  return undefined;
}

const isSchema = (value: unknown): value is Schema =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The first type of a schema other than `null` (a nullable value is shown with its value). */
function typeOf(schema: Schema): string | undefined {
  const type = schema.type;
  if (Array.isArray(type)) return (type.find((t) => t !== 'null') ?? type[0]) as string;
  if (typeof type === 'string') return type;
  if (isSchema(schema.properties)) return 'object';
  if (schema.items !== undefined) return 'array';
  return undefined;
}

/**
 * An example value for `schema`: the schema's own example when it has one, else one built from
 * its type and constraints (bounds, lengths, formats, simple patterns). Deterministic.
 */
export function sampleSchema(schema: unknown, options: SampleOptions = {}): unknown {
  return sample(schema, options, '', new Set());
}

function sample(schema: unknown, options: SampleOptions, name: string, seen: Set<string>): unknown {
  if (!isSchema(schema)) return null;
  if (typeof schema.$ref === 'string') {
    const ref = schema.$ref;
    const target = seen.has(ref) ? undefined : options.resolve?.(ref);
    if (!target) return null;
    return sample(target, options, name, new Set([...seen, ref]));
  }
  const own = declared(schema);
  if (own) return own.value;
  for (const key of ['anyOf', 'oneOf'] as const) {
    const branches = schema[key];
    if (Array.isArray(branches) && branches.length > 0) {
      // A nullable value (`anyOf: [T, null]`) is shown with a value of T.
      const branch: unknown =
        branches.find((b) => isSchema(b) && b.type !== 'null') ?? (branches[0] as unknown);
      return sample(branch, options, name, seen);
    }
  }
  if (Array.isArray(schema.allOf) && schema.allOf.length > 0) {
    const parts = schema.allOf.map((part) => sample(part, options, name, seen));
    if (parts.every(isSchema)) return Object.assign({}, ...parts) as unknown;
    return parts[0];
  }
  switch (typeOf(schema)) {
    case 'object':
      return sampleObject(schema, options, seen);
    case 'array':
      return sampleArray(schema, options, name, seen);
    case 'string':
      return sampleString(schema, name);
    case 'integer':
      return sampleNumber(schema, true);
    case 'number':
      return sampleNumber(schema, false);
    case 'boolean':
      return true;
    case 'null':
      return null;
    case undefined:
    default:
      // No type: any value; an empty object says so without claiming a shape.
      return {};
  }
}

function sampleObject(schema: Schema, options: SampleOptions, seen: Set<string>): unknown {
  const out: Record<string, unknown> = {};
  const properties = isSchema(schema.properties) ? schema.properties : {};
  // Every property, optional ones included: the example shows the whole shape.
  for (const [key, property] of Object.entries(properties)) {
    out[key] = sample(property, options, key, seen);
  }
  const required = Array.isArray(schema.required) ? (schema.required as string[]) : [];
  for (const key of required) if (!(key in out)) out[key] = {};
  return out;
}

function sampleArray(schema: Schema, options: SampleOptions, name: string, seen: Set<string>) {
  const min = typeof schema.minItems === 'number' ? schema.minItems : 0;
  const max = typeof schema.maxItems === 'number' ? schema.maxItems : Infinity;
  const count = Math.min(Math.max(1, min), max);
  const items = isSchema(schema.items) ? schema.items : {};
  const values: unknown[] = [];
  // Distinct values when the items are a choice (uniqueItems of an enum), else the same sample.
  const choices = Array.isArray(items.enum) ? items.enum : undefined;
  for (let i = 0; i < count; i++) {
    values.push(
      choices && i < choices.length ? choices[i] : sample(items, options, singular(name), seen),
    );
  }
  return values;
}

const singular = (name: string) => name.replace(/s$/, '');

function sampleNumber(schema: Schema, integer: boolean): number {
  let low = typeof schema.minimum === 'number' ? schema.minimum : -Infinity;
  let high = typeof schema.maximum === 'number' ? schema.maximum : Infinity;
  const step = integer ? 1 : 0.5;
  if (typeof schema.exclusiveMinimum === 'number')
    low = Math.max(low, schema.exclusiveMinimum + step);
  if (typeof schema.exclusiveMaximum === 'number')
    high = Math.min(high, schema.exclusiveMaximum - step);
  let value = Math.min(Math.max(1, low), high);
  if (integer) value = Math.ceil(value);
  const multiple = typeof schema.multipleOf === 'number' ? schema.multipleOf : undefined;
  if (multiple !== undefined && multiple > 0) value = Math.ceil(value / multiple) * multiple;
  return value;
}

function fitsLength(value: string, schema: Schema): boolean {
  const length = [...value].length;
  const min = typeof schema.minLength === 'number' ? schema.minLength : 0;
  const max = typeof schema.maxLength === 'number' ? schema.maxLength : Infinity;
  return length >= min && length <= max;
}

function sampleString(schema: Schema, name: string): string {
  const pattern = typeof schema.pattern === 'string' ? schema.pattern : undefined;
  // eslint-disable-next-line security/detect-non-literal-regexp -- the pattern is a route schema's own (code), never a request's
  const matches = (s: string) => pattern === undefined || new RegExp(pattern, 'u').test(s);
  const fits = (s: string) => fitsLength(s, schema) && matches(s);
  const candidates: string[] = [];
  const format = typeof schema.format === 'string' ? FORMAT_SAMPLES[schema.format] : undefined;
  if (format !== undefined) candidates.push(format);
  if (pattern !== undefined) candidates.push(...sampleRegex(pattern, schema));
  else for (const [re, value] of NAME_SAMPLES) if (re.test(name)) candidates.push(value);
  candidates.push('string', 'example');
  const found = candidates.find(fits);
  if (found !== undefined) return found;
  // Padded or cut to the bounds (only reached without a pattern that the candidates met).
  const min = typeof schema.minLength === 'number' ? schema.minLength : 0;
  const max = typeof schema.maxLength === 'number' ? schema.maxLength : Infinity;
  const base = candidates[0] ?? 'string';
  return base.padEnd(min, 'x').slice(0, Math.min(max, Math.max(min, base.length)));
}

// ---------------------------------------------------------------------------------------------
// A regular-expression sampler for the simple patterns schemas use (anchors, classes, groups,
// alternation, quantifiers). Each candidate is checked with the real RegExp by the caller, so a
// construct it does not understand only costs the example, never a wrong one.
// ---------------------------------------------------------------------------------------------

type Node =
  | { kind: 'chars'; chars: string }
  | { kind: 'group'; alternatives: Node[][] }
  | { kind: 'repeat'; node: Node; min: number; max: number };

const CLASS_ESCAPES: Record<string, string> = {
  d: '0123456789',
  w: 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_',
  s: ' ',
};
const PRINTABLE = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_-.';

class RegexParser {
  #i = 0;
  readonly source: string;
  constructor(source: string) {
    this.source = source;
  }

  parse(): Node[][] {
    const alternatives = this.#alternatives();
    if (this.#i < this.source.length) throw new Error('unbalanced');
    return alternatives;
  }

  #alternatives(): Node[][] {
    const out: Node[][] = [[]];
    while (this.#i < this.source.length) {
      const c = this.source[this.#i];
      if (c === ')') break;
      if (c === '|') {
        this.#i++;
        out.push([]);
        continue;
      }
      const atom = this.#atom();
      if (atom) (out.at(-1) as Node[]).push(this.#quantified(atom));
    }
    return out;
  }

  #atom(): Node | null {
    const c = this.source[this.#i++] as string;
    if (c === '^' || c === '$') return null;
    if (c === '.') return { kind: 'chars', chars: 'a' };
    if (c === '(') {
      if (this.source.startsWith('?:', this.#i)) this.#i += 2;
      else if (this.source[this.#i] === '?') throw new Error('lookaround');
      const alternatives = this.#alternatives();
      if (this.source[this.#i++] !== ')') throw new Error('unbalanced');
      return { kind: 'group', alternatives };
    }
    if (c === '[') return { kind: 'chars', chars: this.#class() };
    if (c === '\\') return { kind: 'chars', chars: this.#escape() };
    return { kind: 'chars', chars: c };
  }

  #escape(): string {
    const e = this.source[this.#i++] as string;
    if (e in CLASS_ESCAPES) return CLASS_ESCAPES[e] as string;
    if (/[DWSbB]/.test(e)) throw new Error('unsupported escape');
    return e;
  }

  #class(): string {
    const negated = this.source[this.#i] === '^';
    if (negated) this.#i++;
    let chars = '';
    let first = true;
    while (this.#i < this.source.length && (this.source[this.#i] !== ']' || first)) {
      first = false;
      let c = this.source[this.#i++] as string;
      if (c === '\\') {
        c = this.#escape();
        if (c.length > 1) {
          chars += c;
          continue;
        }
      }
      if (this.source[this.#i] === '-' && this.source[this.#i + 1] !== ']') {
        this.#i++;
        let end = this.source[this.#i++] as string;
        if (end === '\\') end = this.#escape();
        for (let code = c.charCodeAt(0); code <= end.charCodeAt(0); code++)
          chars += String.fromCharCode(code);
      } else chars += c;
    }
    if (this.source[this.#i++] !== ']') throw new Error('unbalanced class');
    if (!negated) return chars;
    return [...PRINTABLE].filter((ch) => !chars.includes(ch)).join('');
  }

  #quantified(node: Node): Node {
    const c = this.source[this.#i];
    let min: number;
    let max: number;
    if (c === '?') [min, max] = [0, 1];
    else if (c === '*') [min, max] = [0, Infinity];
    else if (c === '+') [min, max] = [1, Infinity];
    else if (c === '{') {
      // eslint-disable-next-line security/detect-unsafe-regex -- no repetition is nested (an optional group holds \d*): linear
      const m = /^\{(\d+)(,(\d*))?\}/.exec(this.source.slice(this.#i));
      if (!m) return node;
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
      this.#i += m[0].length - 1;
    } else return node;
    this.#i++;
    if (this.source[this.#i] === '?') this.#i++; // lazy: same strings
    return { kind: 'repeat', node, min, max };
  }
}

/** Strings built from the pattern, shortest first (each repetition `extra` times past its minimum). */
function sampleRegex(pattern: string, schema: Schema): string[] {
  let tree: Node[][];
  try {
    tree = new RegexParser(pattern).parse();
  } catch {
    return [];
  }
  const render = (nodes: Node[], extra: number): string =>
    nodes
      .map((node) => {
        if (node.kind === 'chars') return node.chars[0] ?? '';
        if (node.kind === 'group') return render(node.alternatives[0] ?? [], extra);
        const times = Math.min(node.max, node.min + extra);
        return Array.from({ length: times }, () => render([node.node], extra)).join('');
      })
      .join('');
  const out: string[] = [];
  const min = typeof schema.minLength === 'number' ? schema.minLength : 0;
  for (const extra of [0, 1, 2, 3, 5, 8, 16, 32]) {
    const base = render(tree[0] ?? [], extra);
    out.push(base);
    // An unanchored end: the pattern still holds with characters after it.
    if (base.length < min) out.push(base.padEnd(min, 'x'));
  }
  return out;
}

/** The problem body of `code` answered with `status`, as an example. */
export function problemExample(status: number, code: string, typeBase: string): unknown {
  const def = errorCodeDef(code);
  const example: Record<string, unknown> = {
    type: problemType(typeBase, code),
    title: def?.title ?? code,
    status,
    detail: def?.description ?? def?.title ?? code,
    code,
    requestId: FORMAT_SAMPLES.uuid,
  };
  if (code === 'VALIDATION_FAILED')
    example.errors = [{ path: '/body/email', message: 'must match format "email"' }];
  return example;
}

const METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);

interface Media {
  schema?: unknown;
  example?: unknown;
  examples?: unknown;
}

/** A media type's example, when its schema is not raw bytes (an example of those says nothing). */
function fillExample(media: Media, options: SampleOptions): void {
  if (media.example !== undefined || media.examples !== undefined) return;
  if (!isSchema(media.schema) || media.schema.format === 'binary') return;
  media.example = sampleSchema(media.schema, options);
}

/**
 * Gives every request body and response body of the document that has none an example sampled
 * from its schema (in place; returns the document). Examples a route gives (`examples` on its
 * schema, moved to the media type by @fastify/swagger) are kept.
 */
export function addExamples<T>(doc: T): T {
  const root = doc as {
    paths?: Record<string, Record<string, unknown>>;
    components?: { schemas?: Record<string, Schema> };
  };
  const options: SampleOptions = {
    resolve: (ref) => {
      const prefix = '#/components/schemas/';
      return ref.startsWith(prefix)
        ? root.components?.schemas?.[ref.slice(prefix.length)]
        : undefined;
    },
  };
  for (const item of Object.values(root.paths ?? {})) {
    for (const [method, operation] of Object.entries(item)) {
      if (!METHODS.has(method) || !isSchema(operation)) continue;
      const body = operation.requestBody as { content?: Record<string, Media> } | undefined;
      for (const media of Object.values(body?.content ?? {})) fillExample(media, options);
      const responses = (operation.responses ?? {}) as Record<
        string,
        { content?: Record<string, Media> }
      >;
      for (const response of Object.values(responses))
        for (const media of Object.values(response.content ?? {})) fillExample(media, options);
    }
  }
  return doc;
}
