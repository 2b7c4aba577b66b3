import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';
import type { AppEnv } from '../../config/index.ts';

const Id = Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,31}$' });
const Scope = Type.String({ pattern: '^[\\x21\\x23-\\x5B\\x5D-\\x7E]{1,128}$' });
const Common = {
  id: Id,
  clientId: Type.String({ minLength: 1, maxLength: 512 }),
  clientSecret: Type.String({ minLength: 1, maxLength: 4_096 }),
  scopes: Type.Optional(Type.Array(Scope, { maxItems: 32 })),
};
const HttpUrl = Type.String({ pattern: '^https?://[^\\s/]+(/\\S*)?$' });

/** One entry of `AUTH_OIDC_PROVIDERS`: an OpenID Connect issuer (discovery) or GitHub. */
export const OidcProviderEntrySchema = Type.Union([
  Type.Object(
    {
      ...Common,
      kind: Type.Literal('oidc'),
      issuer: HttpUrl,
      // Apple answers by form POST when asked for the address or name.
      responseMode: Type.Optional(Type.Union([Type.Literal('query'), Type.Literal('form_post')])),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      ...Common,
      kind: Type.Literal('github'),
      authorizeUrl: Type.Optional(HttpUrl),
      tokenUrl: Type.Optional(HttpUrl),
      apiUrl: Type.Optional(HttpUrl),
    },
    { additionalProperties: false },
  ),
]);
export const OidcProvidersSchema = Type.Array(OidcProviderEntrySchema, { maxItems: 32 });

/** A configured sign-in provider, defaults applied. */
export type OidcProviderConfig =
  | {
      readonly id: string;
      readonly kind: 'oidc';
      readonly issuer: string;
      readonly responseMode: 'query' | 'form_post';
      readonly clientId: string;
      readonly clientSecret: string;
      readonly scopes: readonly string[];
    }
  | {
      readonly id: string;
      readonly kind: 'github';
      readonly clientId: string;
      readonly clientSecret: string;
      readonly scopes: readonly string[];
      readonly authorizeUrl: string;
      readonly tokenUrl: string;
      readonly apiUrl: string;
    };

/** GitHub's real endpoints; tests point them at a local fake. */
export const GITHUB_DEFAULTS = {
  authorizeUrl: 'https://github.com/login/oauth/authorize',
  tokenUrl: 'https://github.com/login/oauth/access_token',
  apiUrl: 'https://api.github.com',
} as const;

/**
 * Parses `AUTH_OIDC_PROVIDERS` (a JSON array). Problems go to `issue` without the value itself
 * (it holds client secrets). Outside development and test, issuers and URLs must be https.
 */
export function parseOidcProviders(
  raw: string,
  env: AppEnv,
  issue: (message: string) => void,
): OidcProviderConfig[] {
  if (raw.trim() === '') return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    issue('is not valid JSON (expected an array of providers)');
    return [];
  }
  const first = Value.Errors(OidcProvidersSchema, parsed)[0];
  if (first !== undefined) {
    issue(`${first.instancePath || '/'} ${first.message}`);
    return [];
  }
  const entries = parsed as Static<typeof OidcProvidersSchema>;
  const out = entries.map((e): OidcProviderConfig => {
    if (e.kind === 'oidc')
      // The issuer is kept exactly as given: discovery compares it with the one the provider states.
      return {
        ...e,
        responseMode: e.responseMode ?? 'query',
        scopes: e.scopes ?? ['openid', 'email', 'profile'],
      };
    return {
      ...GITHUB_DEFAULTS,
      ...e,
      scopes: e.scopes ?? ['read:user', 'user:email'],
    };
  });
  const seen = new Set<string>();
  for (const p of out) {
    if (seen.has(p.id)) issue(`provider id "${p.id}" appears twice`);
    seen.add(p.id);
    if (p.kind === 'oidc' && !p.scopes.includes('openid'))
      issue(`provider "${p.id}": scopes must include "openid"`);
    const urls = p.kind === 'oidc' ? [p.issuer] : [p.authorizeUrl, p.tokenUrl, p.apiUrl];
    if ((env === 'staging' || env === 'production') && urls.some((u) => !u.startsWith('https://')))
      issue(`provider "${p.id}": URLs must be https in ${env}`);
  }
  return out;
}

/** The setting for printing: each client secret masked, the rest readable. */
export function maskOidcProviders(raw: string): string {
  try {
    const parsed: unknown = JSON.parse(raw);
    if (!Array.isArray(parsed)) return '********';
    return JSON.stringify(
      parsed.map((p: unknown) =>
        p !== null && typeof p === 'object' && 'clientSecret' in p
          ? { ...p, clientSecret: '********' }
          : p,
      ),
    );
  } catch {
    return '********';
  }
}
