import { Type, type Static } from 'typebox';
import { listQuerySchema, pageSchema } from '../db/index.ts';
import { FLAG_KEY_PATTERN, VARIANT_PATTERN } from './definition.ts';
import { flagListSpec } from './repository.ts';

/** Bodies of the admin routes are small: a flag with a thousand overrides fits. */
export const FLAGS_BODY_LIMIT = 131_072;

const EXAMPLE_USER = '0193b6f2-3c4e-7a1b-9f00-2a1d3e4f5a6b';

const FlagKey = Type.String({
  pattern: FLAG_KEY_PATTERN,
  minLength: 1,
  maxLength: 100,
  description: 'The flag’s key, as apps name it: lower case, digits, `.`, `_` and `-`.',
  examples: ['checkout.new-flow'],
});
const VariantName = Type.String({ pattern: VARIANT_PATTERN, examples: ['on'] });
const Description = Type.String({ maxLength: 500, examples: ['The new checkout flow.'] });
const FlagTypeSchema = Type.Union(
  [Type.Literal('boolean'), Type.Literal('string'), Type.Literal('number'), Type.Literal('object')],
  { description: 'The type of the variants’ values (OpenFeature’s flag types).' },
);
const Variants = Type.Record(
  Type.String({ pattern: VARIANT_PATTERN }),
  Type.Unknown({ description: 'A value of the flag’s type.' }),
  {
    minProperties: 1,
    maxProperties: 20,
    description:
      'Variant name → value, all of the flag’s `type`. A boolean flag without them gets `{"on": true, "off": false}`.',
    examples: [{ on: true, off: false }],
  },
);

const Rollout = Type.Object(
  {
    variant: VariantName,
    percentage: Type.Number({
      minimum: 0,
      maximum: 100,
      description:
        'The share of signed-in users who get `variant`, by a stable hash of the flag key and user id (hundredths of a percent): the same user always gets the same answer, and raising it only adds users.',
      examples: [10],
    }),
  },
  { additionalProperties: false },
);
const EnvironmentRule = Type.Object(
  {
    defaultVariant: Type.Optional(VariantName),
    rollout: Type.Optional(Rollout),
  },
  { additionalProperties: false },
);
// Not closed (`additionalProperties: false` would silently drop an unknown environment): the
// service refuses names other than these with 422 FLAG_DEFINITION_INVALID.
const Environments = Type.Object(
  {
    development: Type.Optional(EnvironmentRule),
    test: Type.Optional(EnvironmentRule),
    staging: Type.Optional(EnvironmentRule),
    production: Type.Optional(EnvironmentRule),
  },
  {
    maxProperties: 4,
    description:
      'What each `APP_ENV` changes: its default variant and a percentage rollout. Environments not listed use the flag’s `defaultVariant` with no rollout.',
    examples: [
      { production: { defaultVariant: 'off', rollout: { variant: 'on', percentage: 10 } } },
    ],
  },
);
const Overrides = Type.Array(
  Type.Object(
    { userId: Type.String({ format: 'uuid' }), variant: VariantName },
    { additionalProperties: false },
  ),
  {
    maxItems: 1_000,
    description:
      'Users who always get a variant, in every environment, whatever the rollout (an allow-list: overrides to `on`).',
    examples: [[{ userId: EXAMPLE_USER, variant: 'on' }]],
  },
);

const EXAMPLE = {
  key: 'checkout.new-flow',
  description: 'The new checkout flow.',
  type: 'boolean',
  enabled: true,
  variants: { on: true, off: false },
  defaultVariant: 'off',
  environments: {
    development: { defaultVariant: 'on' },
    production: { rollout: { variant: 'on', percentage: 10 } },
  },
  overrides: [{ userId: EXAMPLE_USER, variant: 'on' }],
};

export const CreateFlagBody = Type.Object(
  {
    key: FlagKey,
    description: Type.Optional(Description),
    type: Type.Optional(FlagTypeSchema),
    enabled: Type.Optional(
      Type.Boolean({ description: 'Off: every evaluation answers the caller’s default.' }),
    ),
    variants: Type.Optional(Variants),
    defaultVariant: Type.Optional(VariantName),
    environments: Type.Optional(Environments),
    overrides: Type.Optional(Overrides),
  },
  { additionalProperties: false, examples: [EXAMPLE] },
);
export type CreateFlagBody = Static<typeof CreateFlagBody>;

export const UpdateFlagBody = Type.Object(
  {
    description: Type.Optional(Description),
    type: Type.Optional(FlagTypeSchema),
    enabled: Type.Optional(Type.Boolean()),
    variants: Type.Optional(Variants),
    defaultVariant: Type.Optional(VariantName),
    environments: Type.Optional(Environments),
    overrides: Type.Optional(Overrides),
  },
  {
    additionalProperties: false,
    minProperties: 1,
    description:
      'Each field given replaces the stored one whole (`environments`, `overrides` too).',
    examples: [{ environments: { production: { rollout: { variant: 'on', percentage: 50 } } } }],
  },
);
export type UpdateFlagBody = Static<typeof UpdateFlagBody>;

// Not `pattern`: a malformed key is an unknown one (404), like any other.
export const FlagKeyParams = Type.Object({
  key: Type.String({ minLength: 1, maxLength: 200, examples: ['checkout.new-flow'] }),
});

export const FlagResponse = Type.Object(
  {
    key: Type.String(),
    description: Type.String(),
    type: FlagTypeSchema,
    enabled: Type.Boolean(),
    variants: Type.Record(Type.String(), Type.Unknown()),
    defaultVariant: Type.String(),
    environments: Environments,
    overrides: Type.Array(Type.Object({ userId: Type.String(), variant: Type.String() })),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
  },
  {
    examples: [
      { ...EXAMPLE, createdAt: '2026-01-15T09:30:00.000Z', updatedAt: '2026-01-15T09:30:00.000Z' },
    ],
  },
);
export type FlagResponse = Static<typeof FlagResponse>;

export const FlagListQuery = listQuerySchema(flagListSpec);
export const FlagPage = pageSchema(FlagResponse);
