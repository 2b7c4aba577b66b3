import type { TObject, TSchema } from 'typebox';
import { Value } from 'typebox/value';
import type { AppEnv, VarMeta } from './schema.ts';

/** A module's settings as the loader sees them: its name and its TypeBox object of variables. */
export interface ConfigSlice {
  readonly name: string;
  readonly config?: TObject;
}

interface Issue {
  key: string;
  message: string;
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
): { values: Record<string, Record<string, unknown>>; vars: Record<string, unknown> } {
  const values: Record<string, Record<string, unknown>> = {};
  const vars: Record<string, unknown> = {};
  const deployed = appEnv === 'staging' || appEnv === 'production';
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
            issues.push({ key, message: `is required in ${appEnv}` });
        } else if (meta.secret && meta.minLength !== undefined && value.length < meta.minLength)
          issues.push({
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
