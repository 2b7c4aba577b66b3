import { defineErrorCodes } from '../http/index.ts';

/** The feature-flag area's error codes (stable once shipped). */
export const FlagCodes = defineErrorCodes('flags', {
  FLAG_NOT_FOUND: {
    kind: 'NotFound',
    title: 'Feature flag not found',
    description: 'No feature flag has this key.',
  },
  FLAG_KEY_TAKEN: {
    kind: 'Conflict',
    title: 'Feature flag key taken',
    description: 'A feature flag with this key exists already.',
  },
  FLAG_DEFINITION_INVALID: {
    kind: 'Invalid',
    title: 'Invalid feature flag',
    description:
      'The definition is inconsistent: a variant it names is not among `variants`, a variant’s value is not of the flag’s `type`, or an override names a user twice. `errors` names each field.',
  },
});
