import fc from 'fast-check';
import type { Operation, Schema } from './openapi.ts';

// ---------------------------------------------------------------------------------------------
// Valid values, derived from a route's JSON schema
// ---------------------------------------------------------------------------------------------

const MAX_DEPTH = 6;

const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);

function stringArb(schema: Schema): fc.Arbitrary<string> {
  const minLength = num(schema.minLength) ?? 0;
  const maxLength = Math.min(num(schema.maxLength) ?? minLength + 40, minLength + 200);
  const fits = (s: string) => s.length >= minLength && s.length <= maxLength;
  switch (schema.format) {
    case 'uuid':
      return fc.uuid();
    case 'email':
      return fc.emailAddress().filter(fits);
    case 'date-time':
      return fc
        .date({ min: new Date('1970-01-01'), max: new Date('2100-01-01'), noInvalidDate: true })
        .map((d) => d.toISOString());
    case 'date':
      return fc
        .date({ min: new Date('1970-01-01'), max: new Date('2100-01-01'), noInvalidDate: true })
        .map((d) => d.toISOString().slice(0, 10));
    case 'uri':
    case 'url':
      return fc.webUrl().filter(fits);
    default:
  }
  if (typeof schema.pattern === 'string') {
    try {
      const re = new RegExp(schema.pattern, 'u');
      // Not `.filter(fits)`: a pattern that yields longer strings than the generator's default
      // bound (a 44-character checksum with no `maxLength`) would loop for ever. Strings the
      // pattern makes are kept when the schema allows their length (its own `maxLength`, if any);
      // others are repeated or cut to fit, which may break the pattern: still a useful input.
      const max = num(schema.maxLength) ?? 10_000;
      return fc
        .stringMatching(re)
        .map((s) =>
          s.length >= minLength && s.length <= max
            ? s
            : (s === '' ? 'a' : s)
                .repeat(Math.ceil(minLength / Math.max(1, s.length)) || 1)
                .slice(0, max),
        );
    } catch {
      // A pattern fast-check cannot generate from: plain strings (mostly invalid, still useful).
    }
  }
  return fc.oneof(
    fc.string({ minLength, maxLength }),
    fc.string({ minLength, maxLength, unit: 'grapheme' }),
  );
}

function numberArb(schema: Schema, integer: boolean): fc.Arbitrary<number> {
  const exMin = num(schema.exclusiveMinimum);
  const exMax = num(schema.exclusiveMaximum);
  let min = num(schema.minimum) ?? (exMin === undefined ? undefined : exMin + (integer ? 1 : 0));
  let max = num(schema.maximum) ?? (exMax === undefined ? undefined : exMax - (integer ? 1 : 0));
  if (integer) {
    min = min === undefined ? -1_000_000 : Math.ceil(min);
    max = max === undefined ? Math.max(min, 0) + 1_000_000 : Math.floor(max);
    return fc.integer({ min, max });
  }
  return fc.double({
    ...(min === undefined ? {} : { min }),
    ...(max === undefined ? {} : { max }),
    noNaN: true,
    noDefaultInfinity: true,
  });
}

/** An arbitrary of values that satisfy `schema` (best effort: the supported keywords). */
export function validValue(schema: Schema, depth = 0): fc.Arbitrary<unknown> {
  if ('const' in schema) return fc.constant(schema.const);
  if (Array.isArray(schema.enum)) return fc.constantFrom(...(schema.enum as unknown[]));
  const alternatives = (schema.anyOf ?? schema.oneOf) as Schema[] | undefined;
  if (Array.isArray(alternatives) && alternatives.length > 0) {
    return fc.oneof(...alternatives.map((s) => validValue(s, depth)));
  }
  if (Array.isArray(schema.allOf)) {
    const { allOf, ...rest } = schema;
    return validValue(Object.assign({}, rest, ...(allOf as Schema[])) as Schema, depth);
  }
  const type = schema.type;
  if (Array.isArray(type)) {
    return fc.oneof(...(type as string[]).map((t) => validValue({ ...schema, type: t }, depth)));
  }
  switch (type) {
    case 'string':
      return stringArb(schema);
    case 'integer':
      return numberArb(schema, true);
    case 'number':
      return numberArb(schema, false);
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array': {
      const items = (schema.items as Schema | undefined) ?? {};
      const minLength = num(schema.minItems) ?? 0;
      const maxLength = Math.min(num(schema.maxItems) ?? minLength + 4, minLength + 4);
      if (depth >= MAX_DEPTH) return fc.constant([]);
      return schema.uniqueItems === true
        ? fc.uniqueArray(validValue(items, depth + 1), {
            minLength,
            maxLength,
            selector: (v) => JSON.stringify(v),
          })
        : fc.array(validValue(items, depth + 1), { minLength, maxLength });
    }
    case 'object':
      return objectArb(schema, depth);
    default:
      if (schema.properties) return objectArb(schema, depth);
      return depth >= MAX_DEPTH ? fc.constant(null) : fc.jsonValue({ maxDepth: 2 });
  }
}

function objectArb(schema: Schema, depth: number): fc.Arbitrary<unknown> {
  const properties = (schema.properties ?? {}) as Record<string, Schema>;
  const required = ((schema.required ?? []) as string[]).filter((k) => k in properties);
  const minProperties = num(schema.minProperties) ?? 0;
  const maxProperties = num(schema.maxProperties);
  if (depth >= MAX_DEPTH) return fc.constant({});
  const model = Object.fromEntries(
    Object.entries(properties).map(([k, s]) => [k, validValue(s, depth + 1)]),
  );
  const fixed = fc.record(model, { requiredKeys: required });
  // A map (TypeBox's `Type.Record`: `patternProperties`, no `properties`): its keys come from
  // the key pattern and its values from the value schema, between min and max properties.
  const patterns = Object.entries((schema.patternProperties ?? {}) as Record<string, Schema>);
  if (patterns.length > 0 && Object.keys(properties).length === 0) {
    const [pattern, valueSchema] = patterns[0]!;
    return fc.dictionary(
      stringArb({ type: 'string', pattern }),
      validValue(valueSchema, depth + 1),
      {
        minKeys: minProperties,
        maxKeys: Math.min(maxProperties ?? minProperties + 4, minProperties + 4),
      },
    );
  }
  // Only filter when the minimum is reachable from the declared properties: a filter that can
  // never pass makes fast-check generate for ever (it hung the whole file once).
  if (minProperties === 0 || Object.keys(properties).length < minProperties) return fixed;
  return fixed.filter((o) => Object.keys(o as object).length >= minProperties);
}

// ---------------------------------------------------------------------------------------------
// Hostile values
// ---------------------------------------------------------------------------------------------

/** JSON text nested `depth` levels deep (text: JSON.stringify would overflow the stack). */
const deepText = (depth: number, array: boolean) =>
  array
    ? `${'['.repeat(depth)}${']'.repeat(depth)}`
    : `${'{"a":'.repeat(depth)}{}${'}'.repeat(depth)}`;

/** Strings that broke, or could break, something between the parser and PostgreSQL. */
export const NASTY_STRINGS: readonly string[] = [
  '\u0000',
  'a\u0000b',
  'user\u0000@example.com',
  '\ud800',
  'x\udfff',
  '\udc00\ud800',
  '',
  ' ',
  '\t\n',
  'a'.repeat(5_000),
  'b'.repeat(300_000),
  '\u202e\u200b\ufeff',
  'ｆｕｌｌ＠ｅｘａｍｐｌｅ．ｃｏｍ',
  "' or 1=1 --",
  '%00',
  '../../etc/passwd',
  '__proto__',
  'constructor',
  'Infinity',
  '-Infinity',
  'NaN',
  '-0',
  '1e309',
  '-1',
  '0',
  '9007199254740993',
  '99999999999999999999999999',
  '-99999999999999999999',
  '1.5',
  'true',
  'null',
  '2024-13-45T25:61:61Z',
  'not-a-uuid',
  '00000000-0000-0000-0000-000000000000',
];

/** JSON values of the wrong type, size or shape for any field. */
export const NASTY_JSON: readonly unknown[] = [
  null,
  true,
  false,
  0,
  -0,
  -1,
  1.5,
  1e308,
  -1e308,
  2 ** 53 + 2,
  -(2 ** 63),
  2 ** 64,
  [],
  {},
  [null],
  { a: {} },
  ['\u0000'],
  Array.from({ length: 20_000 }, (_, i) => i),
  ...NASTY_STRINGS,
];

/**
 * JSON text spliced into a body in place of a value: tokens JSON.stringify never writes, and
 * nesting too deep for it.
 */
export const RAW_TOKENS: readonly string[] = [
  '1e309',
  '-1e309',
  '1E400',
  '-0',
  '-0.0',
  '1e-400',
  '123456789012345678901234567890',
  '"\\u0000"',
  '"a\\u0000"',
  '"\\ud800"',
  '"\\udfff\\ud800"',
  '"\\u202e"',
  deepText(2_000, false),
  deepText(5_000, true),
];

/** Whole bodies that are not JSON, or not the JSON anyone expects. */
const RAW_BODIES: readonly string[] = [
  '',
  '{',
  '{"a":1,}',
  "{'a':1}",
  '\ufeff{}',
  'null',
  '[]',
  '"a string"',
  '0',
  'NaN',
  '{"a":1}{"b":2}',
  '\u0000',
  '[' + '['.repeat(20_000) + ']'.repeat(20_000) + ']',
];

const WRONG_CONTENT_TYPES: readonly string[] = [
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/xml',
  'application/json; charset=utf-16',
  'application/jsonx',
  'application/octet-stream',
  '',
];

// ---------------------------------------------------------------------------------------------
// Mutations of a valid value
// ---------------------------------------------------------------------------------------------

type Path = (string | number)[];

/** Every place in a value (the root first) where a mutation can go. */
function pathsOf(v: unknown, path: Path = [], out: Path[] = []): Path[] {
  out.push(path);
  if (Array.isArray(v)) v.forEach((x, i) => pathsOf(x, [...path, i], out));
  else if (v !== null && typeof v === 'object')
    for (const [k, x] of Object.entries(v)) pathsOf(x, [...path, k], out);
  return out;
}

/** A copy of `v` with `path` set to `next` (the root when the path is empty). */
function setAt(v: unknown, path: Path, next: unknown): unknown {
  if (path.length === 0) return next;
  const [head, ...rest] = path as [string | number, ...Path];
  if (Array.isArray(v)) {
    const copy = [...(v as unknown[])];
    copy[head as number] = setAt(copy[head as number], rest, next);
    return copy;
  }
  const copy = { ...(v as Record<string, unknown>) };
  copy[head] = setAt(copy[head], rest, next);
  return copy;
}

const MARKER = '\u2063fuzz-raw\u2063';

/** A body: text sent as is, with its content type (undefined: no header). */
export interface BodyCase {
  note: string;
  text: string | undefined;
  contentType: string | undefined;
}

const json = (note: string, value: unknown): BodyCase => ({
  note,
  text: JSON.stringify(value),
  contentType: 'application/json',
});

/** Inserts `member` (`"k":v`) as the first member of a JSON object text. */
const withFirstMember = (text: string, member: string) =>
  text === '{}' ? `{${member}}` : `{${member},${text.slice(1)}`;

/** Bodies for an operation that declares one: valid, then mutated in every way listed. */
function bodyArb(schema: Schema): fc.Arbitrary<BodyCase> {
  const valid = validValue(schema);
  const at = fc.tuple(valid, fc.nat());
  const pick = (v: unknown, i: number) => {
    const paths = pathsOf(v);
    return paths[i % paths.length] ?? [];
  };
  const objectKeys = (v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.keys(v) : [];
  return fc.oneof(
    { weight: 4, arbitrary: valid.map((v) => json('valid', v)) },
    {
      weight: 4,
      arbitrary: fc
        .tuple(at, fc.constantFrom(...NASTY_JSON))
        .map(([[v, i], bad]) =>
          json(`value at /${pick(v, i).join('/')} replaced`, setAt(v, pick(v, i), bad)),
        ),
    },
    {
      weight: 3,
      // NUL and non-finite numbers are what reached PostgreSQL before: often, not by chance.
      arbitrary: fc
        .tuple(at, fc.constantFrom('\u0000', 'a\u0000', '\u0000b', 'x\u0000@example.com', -0))
        .map(([[v, i], bad]) =>
          json(`NUL or -0 at /${pick(v, i).join('/')}`, setAt(v, pick(v, i), bad)),
        ),
    },
    {
      weight: 3,
      arbitrary: fc.tuple(at, fc.constantFrom(...RAW_TOKENS)).map(([[v, i], token]) => {
        const path = pick(v, i);
        return {
          note: `raw token ${token} at /${path.join('/')}`,
          text: JSON.stringify(setAt(v, path, MARKER)).replace(JSON.stringify(MARKER), token),
          contentType: 'application/json',
        };
      }),
    },
    {
      weight: 2,
      // Duplicate keys: JSON.parse keeps the last; a validator that read the first would differ.
      arbitrary: fc
        .tuple(valid, fc.nat(), fc.constantFrom(...NASTY_JSON.slice(0, 16)), fc.boolean())
        .map(([v, i, bad, badFirst]) => {
          const keys = objectKeys(v);
          const key = keys[i % Math.max(keys.length, 1)] ?? 'a';
          const text = JSON.stringify(v);
          const member = `${JSON.stringify(key)}:${JSON.stringify(bad)}`;
          return {
            note: `duplicate key ${key}`,
            text: badFirst
              ? withFirstMember(text, member)
              : `${text.slice(0, -1)}${text === '{}' ? '' : ','}${member}}`,
            contentType: 'application/json',
          };
        }),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(
          valid,
          fc.constantFrom(
            '"__proto__":{"admin":true,"roles":["admin"]}',
            '"constructor":{"prototype":{"admin":true}}',
            '"__proto__":null',
            '"prototype":{}',
          ),
        )
        .map(([v, member]) => ({
          note: 'prototype keys',
          text:
            objectKeys(v).length > 0 || JSON.stringify(v) === '{}'
              ? withFirstMember(JSON.stringify(v), member)
              : `{${member}}`,
          contentType: 'application/json',
        })),
    },
    {
      weight: 2,
      arbitrary: fc.tuple(valid, fc.nat()).map(([v, i]) => {
        const keys = objectKeys(v);
        const key = keys[i % Math.max(keys.length, 1)];
        const copy = { ...(v as Record<string, unknown>) };
        if (key !== undefined) delete copy[key];
        return json(`without ${key ?? 'nothing'}`, key === undefined ? v : copy);
      }),
    },
    {
      weight: 1,
      arbitrary: valid.map((v) =>
        json('unknown property', { ...(v as Record<string, unknown>), fuzzExtra: '\u0000' }),
      ),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(...RAW_BODIES).map((text) => ({
        note: 'raw body',
        text,
        contentType: 'application/json',
      })),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(valid, fc.constantFrom(...WRONG_CONTENT_TYPES))
        .map(([v, contentType]) => ({
          note: 'wrong content type',
          text: JSON.stringify(v),
          contentType: contentType === '' ? undefined : contentType,
        })),
    },
  );
}

/** Bodies for an operation that declares none: usually nothing, sometimes something anyway. */
const strayBodyArb: fc.Arbitrary<BodyCase> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.constant({ note: 'no body', text: undefined, contentType: undefined }),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom<BodyCase>(
      { note: 'stray JSON body', text: '{"__proto__":{"a":1}}', contentType: 'application/json' },
      { note: 'stray text body', text: 'hello', contentType: 'text/plain' },
      { note: 'stray malformed JSON', text: '{', contentType: 'application/json' },
    ),
  },
);

// ---------------------------------------------------------------------------------------------
// URLs
// ---------------------------------------------------------------------------------------------

/**
 * Percent-encodes any JavaScript string, lone surrogates included (as the 3 bytes WTF-8 gives
 * them: `%ED%A0%80`, which is not valid UTF-8: exactly what a hostile client sends).
 */
export function encode(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const next = s.charCodeAt(i + 1);
    if (c >= 0xd800 && c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      out += encodeURIComponent(s.slice(i, i + 2));
      i++;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      out += [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)]
        .map((b) => `%${b.toString(16).toUpperCase()}`)
        .join('');
    } else {
      out += encodeURIComponent(s[i] ?? '');
    }
  }
  return out;
}

/** Already-encoded fragments no encoder writes: bad escapes, invalid UTF-8, NUL. */
const RAW_URL_PARTS: readonly string[] = [
  '%00',
  '%',
  '%zz',
  '%ED%A0%80',
  '%F0%28%8C%28',
  '%C0%AF',
  '..%2F..%2F',
  '%2e%2e',
  '%FF%FE',
];

/** A path or query value: as the schema says, hostile, or an already-encoded raw fragment. */
type UrlValue = { raw: string } | { text: string };

const urlText = (v: UrlValue) => ('raw' in v ? v.raw : encode(v.text));

const asQueryText = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));

function urlValueArb(schema: Schema, known: readonly string[]): fc.Arbitrary<UrlValue> {
  return fc.oneof(
    { weight: 3, arbitrary: validValue(schema).map((v) => ({ text: asQueryText(v) })) },
    ...(known.length > 0
      ? [{ weight: 4, arbitrary: fc.constantFrom(...known).map((text) => ({ text })) }]
      : []),
    { weight: 1, arbitrary: fc.uuid().map((text) => ({ text })) },
    { weight: 3, arbitrary: fc.constantFrom(...NASTY_STRINGS).map((text) => ({ text })) },
    { weight: 1, arbitrary: fc.constantFrom(...RAW_URL_PARTS).map((raw) => ({ raw })) },
  );
}

// ---------------------------------------------------------------------------------------------
// Credentials
// ---------------------------------------------------------------------------------------------

/** How a request is authenticated: an actor, or a malformed or forged `Authorization` header. */
export type AuthCase = { actor: 'anonymous' | 'user' | 'admin' } | { malformed: MalformedAuth };

/** Resolved at request time (the tokens change when the actors are remade). */
export const MALFORMED_AUTH = [
  'basic-scheme',
  'scheme-only',
  'scheme-and-space',
  'two-spaces',
  'lowercase-scheme',
  'other-scheme',
  'no-scheme',
  'garbage-token',
  'three-dots',
  'huge-token',
  'non-canonical-signature',
  'tampered-payload',
  'padded-token',
  'two-tokens',
  'signed-sid-not-uuid',
  'signed-sub-not-uuid',
  'signed-unknown-session',
  'signed-sid-of-other-user',
] as const;
export type MalformedAuth = (typeof MALFORMED_AUTH)[number];

const authArb: fc.Arbitrary<AuthCase> = fc.oneof(
  { weight: 2, arbitrary: fc.constant({ actor: 'anonymous' as const }) },
  { weight: 3, arbitrary: fc.constant({ actor: 'user' as const }) },
  { weight: 3, arbitrary: fc.constant({ actor: 'admin' as const }) },
  { weight: 3, arbitrary: fc.constantFrom(...MALFORMED_AUTH).map((malformed) => ({ malformed })) },
);

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

/** One generated request, before the actors' tokens are filled in. */
export interface FuzzRequest {
  method: string;
  url: string;
  auth: AuthCase;
  body: BodyCase;
}

/** Which fixture ids a path parameter may name, by its name. */
export type KnownValues = ReadonlyMap<string, readonly string[]>;

function knownFor(op: Operation, name: string, known: KnownValues): string[] {
  if (name === 'queue') return [...(known.get('queue') ?? [])];
  if (name === 'provider') return ['github', 'google', 'test'];
  const segment = op.path.split('/').slice(0, -1).join('/');
  const by = (...kinds: string[]) => kinds.flatMap((k) => known.get(k) ?? []);
  if (segment.endsWith('/sessions')) return by('session', 'user');
  if (segment.endsWith('/roles')) return by('role', 'user');
  if (segment.endsWith('/users')) return by('user', 'role');
  if (segment.includes('/jobs') || segment.includes('/dead')) return by('job', 'user');
  return by('user', 'session', 'role', 'job');
}

/** Requests for one operation: path parameters, query, body and credentials, valid or not. */
export function requestArb(op: Operation, known: KnownValues): fc.Arbitrary<FuzzRequest> {
  const path = fc.tuple(
    ...op.pathParams.map((p) => urlValueArb(p.schema, knownFor(op, p.name, known))),
  );
  const queryEntry = (p: Operation['queryParams'][number]) =>
    fc.option(
      urlValueArb(p.schema, []).map((v) => [p.name, v] as const),
      { nil: undefined, freq: p.required ? 10 : 2 },
    );
  const extra = fc.option(
    fc.constantFrom<[string, UrlValue]>(
      ['__proto__', { text: 'x' }],
      ['constructor', { text: 'x' }],
      ['fuzzUnknown', { text: '\u0000' }],
      ['limit', { text: 'Infinity' }],
      ['limit', { text: '1' }],
      ['a', { raw: '%ED%A0%80' }],
    ),
    { nil: undefined, freq: 3 },
  );
  const query = fc.tuple(fc.tuple(...op.queryParams.map(queryEntry)), extra, fc.boolean());
  return fc
    .record({
      path,
      query,
      auth: authArb,
      body: op.body ? bodyArb(op.body.schema) : strayBodyArb,
    })
    .map(({ path: values, query: [entries, extraEntry, repeat], auth, body }) => {
      let url = op.path;
      op.pathParams.forEach((p, i) => {
        url = url.replace(`{${p.name}}`, urlText(values[i] ?? { text: '' }));
      });
      const pairs = entries.filter((e) => e !== undefined).map(([k, v]) => [k, v] as const);
      // A repeated parameter arrives as an array: schemas of single values must still hold.
      if (repeat && pairs[0]) pairs.push(pairs[0]);
      if (extraEntry) pairs.push(extraEntry);
      const qs = pairs.map(([k, v]) => `${encode(k)}=${urlText(v)}`).join('&');
      return { method: op.method, url: qs ? `${url}?${qs}` : url, auth, body };
    });
}
