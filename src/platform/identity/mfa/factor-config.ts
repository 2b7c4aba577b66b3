import { Type, type Static } from 'typebox';
import {
  configDuration as duration,
  configVar as v,
  parseDuration,
  type AppEnv,
  type ConfigIssue,
} from '../../config/index.ts';

/*
 * The settings of the SMS factor and of passkeys: part of identity's settings (`config.ts`
 * spreads them into its schema and parses them here), kept in this file so the factors' owner
 * edits them without touching the rest.
 */

const group = 'Module: identity';

export const FactorConfigVars = {
  AUTH_SMS_PROVIDER: v(
    Type.Enum(['auto', 'twilio', 'console', 'off'], {
      description:
        "Who sends SMS codes. `twilio`: Twilio's Messages API (`AUTH_SMS_TWILIO_*`). `console`: written to the log, code included (development and test only; refused in staging and production). `off`: no SMS factor (its routes answer 409 `SMS_UNAVAILABLE`). `auto`: `console` in development and test, `off` in staging and production.",
      default: 'auto',
    }),
    { group },
  ),
  AUTH_SMS_TWILIO_ACCOUNT_SID: v(
    Type.String({
      description: 'The Twilio account SID (`AC...`), the user name of the Basic authentication.',
      default: '',
      pattern: '^(AC[0-9a-fA-F]{32})?$',
    }),
    { group },
  ),
  AUTH_SMS_TWILIO_AUTH_TOKEN: v(
    Type.String({ description: "The Twilio account's auth token.", default: '' }),
    { group, secret: true },
  ),
  AUTH_SMS_TWILIO_FROM: v(
    Type.String({
      description:
        'The sender: a Twilio phone number in E.164 (`+14155550123`) or an alphanumeric sender id. Either this or `AUTH_SMS_TWILIO_MESSAGING_SERVICE_SID`.',
      default: '',
      maxLength: 32,
    }),
    { group },
  ),
  AUTH_SMS_TWILIO_MESSAGING_SERVICE_SID: v(
    Type.String({
      description:
        'A Twilio Messaging Service (`MG...`) that picks the sender; wins over `AUTH_SMS_TWILIO_FROM`.',
      default: '',
      pattern: '^(MG[0-9a-fA-F]{32})?$',
    }),
    { group },
  ),
  AUTH_SMS_TWILIO_BASE_URL: v(
    Type.String({
      description: "Twilio's API root (tests point it at a local fake).",
      default: 'https://api.twilio.com',
      pattern: '^https?://[^\\s/]+(/[^\\s]*)?$',
    }),
    { group },
  ),
  AUTH_SMS_DEFAULT_REGION: v(
    Type.String({
      description:
        'Region (ISO 3166 alpha-2, `GB`) of phone numbers typed without a country prefix. Empty: a number must start with `+` and its country code.',
      default: '',
      pattern: '^([A-Z]{2})?$',
    }),
    { group },
  ),
  AUTH_SMS_REFUSE_PREMIUM: v(
    Type.Boolean({
      description:
        'Refuse premium-rate and shared-cost numbers (SMS pumping fraud sends codes to numbers that pay their owner).',
      default: true,
    }),
    { group },
  ),
  AUTH_SMS_MAX_PER_NUMBER: v(
    Type.Integer({
      description: 'SMS codes sent to one number in an hour, at most.',
      default: 5,
      minimum: 1,
      maximum: 100,
    }),
    { group },
  ),
  AUTH_SMS_MAX_PER_ACCOUNT: v(
    Type.Integer({
      description: 'SMS codes sent for one account in an hour, at most.',
      default: 10,
      minimum: 1,
      maximum: 100,
    }),
    { group },
  ),
  AUTH_SMS_SATISFIES_MFA_ROLES: v(
    Type.Boolean({
      description:
        'Whether a sign-in whose second factor was an SMS code counts for roles that require MFA. Off: such roles need an authenticator app or a passkey (SIM swap and SS7 interception make SMS the weakest factor).',
      default: false,
    }),
    { group },
  ),
  AUTH_WEBAUTHN_RP_ID: v(
    Type.String({
      description:
        'The WebAuthn relying-party id (a registrable domain, `example.com`); passkeys are bound to it. Empty: the host of `PUBLIC_URL`.',
      default: '',
      maxLength: 253,
      pattern: '^([a-z0-9-]+(\\.[a-z0-9-]+)*)?$',
    }),
    { group },
  ),
  AUTH_WEBAUTHN_RP_NAME: v(
    Type.String({
      description: 'The name a passkey prompt shows for this service.',
      default: 'Groundwork',
      minLength: 1,
      maxLength: 64,
    }),
    { group },
  ),
  AUTH_WEBAUTHN_ORIGINS: v(
    Type.String({
      description:
        'Origins a passkey ceremony may come from, comma separated (`https://app.example.com,https://example.com`). Empty: the origin of `PUBLIC_URL`.',
      default: '',
      maxLength: 2_048,
    }),
    { group },
  ),
  AUTH_WEBAUTHN_CHALLENGE_TTL: v(
    duration('Lifetime of a passkey ceremony (its challenge, single use).', '5m'),
    { group },
  ),
};

type FactorVars = { [K in keyof typeof FactorConfigVars]: Static<(typeof FactorConfigVars)[K]> };

export interface TwilioSettings {
  readonly accountSid: string;
  readonly authToken: string;
  readonly from: string | null;
  readonly messagingServiceSid: string | null;
  readonly baseUrl: string;
}

/** The SMS factor's and passkeys' settings, parsed. */
export interface FactorSettings {
  readonly sms: {
    /** Null: SMS is off. */
    readonly provider: 'twilio' | 'console' | null;
    readonly twilio: TwilioSettings | null;
    readonly defaultRegion: string | null;
    readonly refusePremium: boolean;
    readonly maxPerNumber: number;
    readonly maxPerAccount: number;
    readonly satisfiesMfaRoles: boolean;
  };
  readonly webauthn: {
    readonly rpId: string;
    readonly rpName: string;
    readonly origins: readonly string[];
    readonly challengeTtlS: number;
  };
}

function smsProvider(vars: FactorVars, env: AppEnv): 'twilio' | 'console' | null {
  if (vars.AUTH_SMS_PROVIDER === 'auto')
    return env === 'development' || env === 'test' ? 'console' : null;
  return vars.AUTH_SMS_PROVIDER === 'off' ? null : vars.AUTH_SMS_PROVIDER;
}

function origins(value: string): string[] {
  return value
    .split(',')
    .map((o) => o.trim())
    .filter((o) => o !== '');
}

export function checkFactorConfig(vars: FactorVars, env: AppEnv): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const deployedEnv = env === 'staging' || env === 'production';
  if (vars.AUTH_SMS_PROVIDER === 'console' && deployedEnv)
    issues.push({
      key: 'AUTH_SMS_PROVIDER',
      message: 'console writes codes to the log: development and test only',
    });
  if (vars.AUTH_SMS_PROVIDER === 'twilio') {
    if (vars.AUTH_SMS_TWILIO_ACCOUNT_SID === '')
      issues.push({ key: 'AUTH_SMS_TWILIO_ACCOUNT_SID', message: 'is required with twilio' });
    if (vars.AUTH_SMS_TWILIO_AUTH_TOKEN === '')
      issues.push({ key: 'AUTH_SMS_TWILIO_AUTH_TOKEN', message: 'is required with twilio' });
    if (vars.AUTH_SMS_TWILIO_FROM === '' && vars.AUTH_SMS_TWILIO_MESSAGING_SERVICE_SID === '')
      issues.push({
        key: 'AUTH_SMS_TWILIO_FROM',
        message: 'or AUTH_SMS_TWILIO_MESSAGING_SERVICE_SID is required with twilio',
      });
    if (deployedEnv && !vars.AUTH_SMS_TWILIO_BASE_URL.startsWith('https://'))
      issues.push({ key: 'AUTH_SMS_TWILIO_BASE_URL', message: 'must be https' });
  }
  for (const origin of origins(vars.AUTH_WEBAUTHN_ORIGINS)) {
    let ok: boolean;
    try {
      ok = new URL(origin).origin === origin;
    } catch {
      ok = false;
    }
    if (!ok)
      issues.push({
        key: 'AUTH_WEBAUTHN_ORIGINS',
        message: `"${origin.slice(0, 64)}" is not an origin (scheme://host[:port])`,
      });
  }
  return issues;
}

export function parseFactorConfig(
  vars: FactorVars,
  context: { env: AppEnv; publicUrl: string },
): FactorSettings {
  const provider = smsProvider(vars, context.env);
  const publicUrl = new URL(context.publicUrl);
  const listed = origins(vars.AUTH_WEBAUTHN_ORIGINS);
  return {
    sms: {
      provider,
      twilio:
        provider === 'twilio'
          ? {
              accountSid: vars.AUTH_SMS_TWILIO_ACCOUNT_SID,
              authToken: vars.AUTH_SMS_TWILIO_AUTH_TOKEN,
              from: vars.AUTH_SMS_TWILIO_FROM === '' ? null : vars.AUTH_SMS_TWILIO_FROM,
              messagingServiceSid:
                vars.AUTH_SMS_TWILIO_MESSAGING_SERVICE_SID === ''
                  ? null
                  : vars.AUTH_SMS_TWILIO_MESSAGING_SERVICE_SID,
              baseUrl: vars.AUTH_SMS_TWILIO_BASE_URL.replace(/\/+$/, ''),
            }
          : null,
      defaultRegion: vars.AUTH_SMS_DEFAULT_REGION === '' ? null : vars.AUTH_SMS_DEFAULT_REGION,
      refusePremium: vars.AUTH_SMS_REFUSE_PREMIUM,
      maxPerNumber: vars.AUTH_SMS_MAX_PER_NUMBER,
      maxPerAccount: vars.AUTH_SMS_MAX_PER_ACCOUNT,
      satisfiesMfaRoles: vars.AUTH_SMS_SATISFIES_MFA_ROLES,
    },
    webauthn: {
      rpId: vars.AUTH_WEBAUTHN_RP_ID === '' ? publicUrl.hostname : vars.AUTH_WEBAUTHN_RP_ID,
      rpName: vars.AUTH_WEBAUTHN_RP_NAME,
      origins: listed.length > 0 ? listed : [publicUrl.origin],
      challengeTtlS: parseDuration(vars.AUTH_WEBAUTHN_CHALLENGE_TTL),
    },
  };
}
