import { createHash } from 'node:crypto';
import { APP_ENVS, type AppEnv } from '../config/index.ts';
import type { FieldError } from '../http/index.ts';

/** The value types a flag may have: OpenFeature's boolean, string, number and object flags. */
export const FLAG_TYPES = ['boolean', 'string', 'number', 'object'] as const;
export type FlagType = (typeof FLAG_TYPES)[number];

/** `checkout.new-flow`: lower case, digits, and `.`, `_`, `-` between words. */
export const FLAG_KEY_PATTERN = '^[a-z][a-z0-9]*([._-][a-z0-9]+)*$';
/** `on`, `off`, `blue`, `v2`. */
export const VARIANT_PATTERN = '^[a-z][a-z0-9_-]{0,31}$';
const VARIANT = new RegExp(VARIANT_PATTERN);

/** A JSON value (an object flag's variants). */
export type FlagValue =
  boolean | string | number | null | FlagValue[] | { [key: string]: FlagValue };

/** Part of the users, by a stable hash of their id, gets another variant (in one environment). */
export interface Rollout {
  variant: string;
  /** 0 to 100, in steps of 0.01: `10` is one user in ten. */
  percentage: number;
}

/** What one environment changes: its own default variant, and a percentage rollout. */
export interface EnvironmentRule {
  defaultVariant?: string;
  rollout?: Rollout;
}

export type EnvironmentRules = Partial<Record<AppEnv, EnvironmentRule>>;

/** One user always gets this variant (an allow-list is overrides to `on`), in every environment. */
export interface FlagOverride {
  userId: string;
  variant: string;
}

/** A flag as stored and evaluated. */
export interface FlagDefinition {
  key: string;
  description: string;
  type: FlagType;
  /** Off: every evaluation answers the caller's default (OpenFeature's `DISABLED`). */
  enabled: boolean;
  variants: Record<string, FlagValue>;
  /** The variant of environments without a rule of their own, and of anonymous callers. */
  defaultVariant: string;
  environments: EnvironmentRules;
  overrides: FlagOverride[];
}

/** The variants a boolean flag gets when none are given. */
export const BOOLEAN_VARIANTS: Readonly<Record<string, boolean>> = { on: true, off: false };

/** Buckets of the rollout hash: a percentage resolves to hundredths (0.01 %). */
export const ROLLOUT_BUCKETS = 10_000;

/**
 * The rollout bucket of a user for a flag, in [0, 10000): the first 32 bits of
 * SHA-256(`<flag key>` NUL `<user id>`) modulo 10,000 (bias below 10⁻⁵). Stable across processes
 * and releases; the flag key is in the hash so that two flags at 10 % do not pick the same users.
 * A user in a rollout at p % stays in it when p grows.
 */
export function rolloutBucket(flagKey: string, userId: string): number {
  const digest = createHash('sha256').update(flagKey).update('\0').update(userId).digest();
  return digest.readUInt32BE(0) % ROLLOUT_BUCKETS;
}

/** Whether a user falls inside a rollout of `percentage` (0–100) of a flag. */
export function inRollout(flagKey: string, userId: string, percentage: number): boolean {
  return rolloutBucket(flagKey, userId) < Math.round(percentage * 100);
}

/** OpenFeature's resolution reasons this provider gives. */
export type FlagReason = 'DISABLED' | 'TARGETING_MATCH' | 'SPLIT' | 'DEFAULT';

export interface Evaluation {
  reason: FlagReason;
  /** Null when disabled: the caller's default applies. */
  variant: string | null;
  value: FlagValue | undefined;
}

/**
 * Evaluates a flag for an environment and a user (`null`: anonymous). In order: disabled → the
 * caller's default; a user override; the environment's rollout (identified users only); the
 * environment's default variant, else the flag's.
 */
export function evaluateFlag(
  flag: FlagDefinition,
  env: AppEnv,
  userId: string | null | undefined,
): Evaluation {
  if (!flag.enabled) return { reason: 'DISABLED', variant: null, value: undefined };
  const pick = (variant: string, reason: FlagReason): Evaluation => ({
    reason,
    variant,
    value: flag.variants[variant],
  });
  if (userId) {
    const override = flag.overrides.find((o) => o.userId === userId);
    if (override) return pick(override.variant, 'TARGETING_MATCH');
  }
  const rule = flag.environments[env];
  const base = rule?.defaultVariant ?? flag.defaultVariant;
  if (rule?.rollout && userId)
    return pick(
      inRollout(flag.key, userId, rule.rollout.percentage) ? rule.rollout.variant : base,
      'SPLIT',
    );
  return pick(base, 'DEFAULT');
}

function valueFits(type: FlagType, value: FlagValue): boolean {
  if (type === 'object') return typeof value === 'object' && value !== null;
  return typeof value === type;
}

/**
 * The problems of a definition that its schema cannot see: every variant it names must exist,
 * every variant's value must be of its type, an environment must be a known one, a user is
 * overridden once. Empty when it is consistent.
 */
export function definitionErrors(flag: Omit<FlagDefinition, 'key' | 'description'>): FieldError[] {
  const errors: FieldError[] = [];
  const names = new Set(Object.keys(flag.variants));
  const known = (path: string, variant: string) => {
    if (!names.has(variant))
      errors.push({ path, message: `names variant "${variant}", which is not in variants` });
  };
  if (names.size === 0) errors.push({ path: '/body/variants', message: 'must name a variant' });
  for (const [name, value] of Object.entries(flag.variants)) {
    if (!VARIANT.test(name))
      errors.push({ path: `/body/variants/${name}`, message: `must match ${VARIANT_PATTERN}` });
    else if (!valueFits(flag.type, value))
      errors.push({ path: `/body/variants/${name}`, message: `must be a ${flag.type} value` });
  }
  known('/body/defaultVariant', flag.defaultVariant);
  for (const [env, rule] of Object.entries(flag.environments)) {
    if (!(APP_ENVS as readonly string[]).includes(env)) {
      errors.push({
        path: `/body/environments/${env}`,
        message: `is not an environment (${APP_ENVS.join(', ')})`,
      });
      continue;
    }
    if (rule.defaultVariant !== undefined)
      known(`/body/environments/${env}/defaultVariant`, rule.defaultVariant);
    if (rule.rollout) known(`/body/environments/${env}/rollout/variant`, rule.rollout.variant);
  }
  const seen = new Set<string>();
  flag.overrides.forEach((o, i) => {
    known(`/body/overrides/${String(i)}/variant`, o.variant);
    if (seen.has(o.userId))
      errors.push({ path: `/body/overrides/${String(i)}/userId`, message: 'is overridden twice' });
    seen.add(o.userId);
  });
  return errors;
}
