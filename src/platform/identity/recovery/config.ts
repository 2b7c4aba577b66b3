import { configDuration as duration, configVar as v, parseDuration } from '../../config/index.ts';

/*
 * The setting of lost-device recovery: part of identity's settings (`config.ts` spreads it into
 * its schema and parses it here).
 */

export const RecoveryConfigVars = {
  AUTH_MFA_RECOVERY_DELAY: v(
    duration(
      'Waiting period of a self-service recovery (lost device): from the mailed link being followed until the second factors are removed; the owner is mailed and can cancel meanwhile.',
      '24h',
    ),
    { group: 'Module: identity' },
  ),
};

export interface RecoverySettings {
  /** Seconds from a confirmed self-service recovery to the removal of the second factors. */
  readonly delayS: number;
}

export function parseRecoveryConfig(vars: { AUTH_MFA_RECOVERY_DELAY: string }): RecoverySettings {
  return { delayS: parseDuration(vars.AUTH_MFA_RECOVERY_DELAY) };
}
