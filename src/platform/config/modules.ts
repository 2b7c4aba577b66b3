import type { TObject, TSchema } from 'typebox';
import { Value } from 'typebox/value';
import type { AppEnv, VarMeta } from './schema.ts';
import { ConfigSchema } from './schema.ts';

/** What a module's cross-field checks and parsing of its settings may depend on. */
export interface SliceContext {
  readonly env: AppEnv;
  /** The public base URL (`PUBLIC_URL`, or derived from `HOST` and `PORT`). */
  readonly publicUrl: string;
}

interface Issue {
  key: string;
  message: string;
}

/**
 * A module's settings as the loader sees them: its name, its TypeBox object of variables, and
 * optionally the checks across its variables and the parsing of them into the module's settings.
 */
export interface ConfigSlice {
  readonly name: string;
  readonly config?: TObject;
  // Loosely typed here: `defineModule` types them by the module's schema.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly checkConfig?: (values: any, context: SliceContext) => readonly Issue[];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly parseConfig?: (values: any, context: SliceContext) => unknown;
}

/**
 * Each module's settings in their final form: the cross-field checks of each slice whose values all
 * have their type (problems added to `issues`), then its parsing. Run once the platform's own
 * settings are known (the public URL).
 */
export function finishSlices(
  slices: readonly ConfigSlice[],
  values: Readonly<Record<string, Record<string, unknown>>>,
  context: SliceContext,
  issues: Issue[],
): Record<string, Record<string, unknown>> {
  for (const slice of slices) {
    const own = values[slice.name];
    if (own !== undefined && slice.checkConfig) issues.push(...slice.checkConfig(own, context));
  }
  if (issues.length > 0) return {};
  const out: Record<string, Record<string, unknown>> = {};
  for (const slice of slices) {
    const own = values[slice.name] ?? {};
    // A module's settings are an object (its schema's, or what its parseConfig makes of them).
    out[slice.name] = slice.parseConfig
      ? (slice.parseConfig(own, context) as Record<string, unknown>)
      : own;
  }
  return out;
}

type Described = TSchema & { 'x-config'?: VarMeta; type?: string; enum?: unknown[] };

/** The metadata of a module's variable (its group is the module's heading). */
export function sliceMeta(slice: ConfigSlice, key: string): VarMeta {
  const properties: Record<string, Described> = slice.config?.properties ?? {};
  const schema = properties[key];
  return { ...schema?.['x-config'], group: `Module: ${slice.name}` };
}

/**
 * Validates each module's settings against its schema, with the same rules as the platform's
 * (defaults, conversion, required and strong secrets in staging and production). Problems are
 * added to `issues`; the result holds each module's parsed values.
 */
export function loadSlices(
  slices: readonly ConfigSlice[],
  read: (key: string) => string | undefined,
  appEnv: AppEnv,
  issues: Issue[],
  /** Where required and weak secrets go: reported with the cross-field checks, as the platform's. */
  secretIssues: Issue[] = issues,
): { values: Record<string, Record<string, unknown>>; vars: Record<string, unknown> } {
  const values: Record<string, Record<string, unknown>> = {};
  const vars: Record<string, unknown> = {};
  const deployed = appEnv === 'staging' || appEnv === 'production';
  // A variable belongs to one module: two declaring it would read the same value differently.
  const owner = new Map<string, string>(
    Object.keys(ConfigSchema.properties).map((k) => [k, 'the platform']),
  );
  for (const slice of slices) {
    for (const key of Object.keys(slice.config?.properties ?? {})) {
      const other = owner.get(key);
      if (other !== undefined && other !== slice.name)
        throw new Error(`setting ${key} is declared by both ${other} and module ${slice.name}`);
      owner.set(key, slice.name);
    }
  }
  for (const slice of slices) {
    const schema = slice.config;
    if (!schema) {
      values[slice.name] = {};
      continue;
    }
    const raw: Record<string, unknown> = {};
    for (const [key, sub] of Object.entries(schema.properties as Record<string, Described>)) {
      const value = read(key);
      if (value === undefined) continue;
      if (value === '' && sub.type !== 'string') continue;
      raw[key] = value;
    }
    const converted = Value.Convert(schema, Value.Default(schema, { ...raw })) as Record<
      string,
      unknown
    >;
    const seen = new Set<string>();
    for (const error of Value.Errors(schema, converted)) {
      const key = error.instancePath.replace(/^\//, '').split('/')[0] ?? '';
      if (key === '' || seen.has(key)) continue;
      seen.add(key);
      const sub = (schema.properties as Record<string, Described>)[key];
      const allowed = Array.isArray(sub?.enum) ? sub.enum.map(String) : undefined;
      issues.push({
        key,
        message: `${allowed ? `must be one of: ${allowed.join(', ')}` : error.message}${raw[key] === undefined ? '' : ` (got ${JSON.stringify(raw[key])})`}`,
      });
    }
    if (deployed) {
      for (const key of Object.keys(schema.properties)) {
        const meta = sliceMeta(slice, key);
        const value =
          raw[key] === undefined ? '' : JSON.stringify(converted[key] ?? '').replace(/^"|"$/g, '');
        if (value === '') {
          if (meta.requiredIn?.includes(appEnv))
            secretIssues.push({ key, message: `is required in ${appEnv}` });
        } else if (meta.secret && meta.minLength !== undefined && value.length < meta.minLength)
          secretIssues.push({
            key,
            message: `must be at least ${meta.minLength} characters in ${appEnv}`,
          });
      }
    }
    values[slice.name] = converted;
    Object.assign(vars, converted);
  }
  return { values, vars };
}
