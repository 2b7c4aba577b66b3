import { createHash } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { LRUCache } from 'lru-cache';
import type { Cache } from '../../cache/index.ts';
import type { Db } from '../../db/index.ts';
import type { Logger } from '../../observability/index.ts';
import type { ExternalIssuerSettings } from '../config.ts';
import { identityDb } from '../db.ts';
import { foldGrants } from '../rbac/permissions.ts';
import type { Authenticated } from '../schemas.ts';
import type { AuthMethod } from '../tables.ts';

export interface ExternalTokensOptions {
  settings: ExternalIssuerSettings;
  db: Db;
  cache: Cache;
  /** `AUTH_PERMISSION_CACHE_TTL`: how long the grants set for a token's user are kept. */
  permissionTtlS: number;
  logger: Logger;
  timeoutMs: number;
}

/** The issuer a token claims (unverified: only to choose who verifies it). */
export function claimedIssuer(token: string): string | undefined {
  const first = token.indexOf('.');
  const second = token.indexOf('.', first + 1);
  if (first < 0 || second < 0 || second - first > 8_192) return undefined;
  try {
    const payload = JSON.parse(
      Buffer.from(token.slice(first + 1, second), 'base64url').toString('utf8'),
    ) as { iss?: unknown };
    return typeof payload.iss === 'string' ? payload.iss : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The Groundwork user id of an external subject: a UUID derived from issuer and `sub` (version
 * 8, name-based), stable across processes and restarts, never one of identity's own (v7).
 */
export function externalUserId(issuer: string, sub: string): string {
  const h = createHash('sha256').update(`${issuer}\n${sub}`).digest();
  h[6] = ((h[6] ?? 0) & 0x0f) | 0x80;
  h[8] = ((h[8] ?? 0) & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

function claimAt(payload: JWTPayload, path: readonly string[]): unknown {
  let value: unknown = payload;
  for (const part of path) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

interface Verified {
  auth: Authenticated;
  roles: string[];
  expiresAt: number;
  /** When the grants written for this user must be written again. */
  primedUntil: number;
}

/**
 * Access tokens of an external OpenID provider (`AUTH_EXTERNAL_ISSUER`, e.g. Keycloak): verified
 * against its JWKS (issuer, audience, expiry), the roles claim mapped to Groundwork roles. The
 * caller has no account here: its id is derived from the subject, and the grants of its mapped
 * roles are written where the permission checks read a user's grants (the platform cache, as
 * `AccessControl` keys them), so routes' `config.permission` and channel checks apply unchanged.
 * Such sessions are not revocable here: they end when the provider's token expires.
 */
export class ExternalTokens {
  readonly #settings: ExternalIssuerSettings;
  readonly #options: ExternalTokensOptions;
  #jwks: ReturnType<typeof createRemoteJWKSet> | null = null;
  readonly #verified = new LRUCache<string, Verified>({ max: 10_000 });

  constructor(options: ExternalTokensOptions) {
    this.#settings = options.settings;
    this.#options = options;
  }

  get issuer(): string {
    return this.#settings.issuer;
  }

  async #keys(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    if (this.#jwks) return this.#jwks;
    let url = this.#settings.jwksUrl;
    if (url === null) {
      const discovery = `${this.#settings.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
      const res = await fetch(discovery, { signal: AbortSignal.timeout(this.#options.timeoutMs) });
      if (!res.ok) throw new Error(`OpenID discovery answered ${res.status}`);
      const doc = (await res.json()) as { jwks_uri?: unknown };
      if (typeof doc.jwks_uri !== 'string') throw new Error('OpenID discovery has no jwks_uri');
      url = doc.jwks_uri;
    }
    this.#jwks = createRemoteJWKSet(new URL(url), { timeoutDuration: this.#options.timeoutMs });
    return this.#jwks;
  }

  /** The session of a valid token; null for an invalid, expired or foreign one. */
  async authenticate(token: string): Promise<Authenticated | null> {
    const now = Date.now();
    let known = this.#verified.get(token);
    if (known && known.expiresAt <= now) {
      this.#verified.delete(token);
      known = undefined;
    }
    if (!known) {
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, await this.#keys(), {
          issuer: this.#settings.issuer,
          audience: this.#settings.audience,
          algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'],
          requiredClaims: ['sub', 'exp'],
        }));
      } catch (error) {
        this.#options.logger.debug(
          { err: { message: error instanceof Error ? error.message : String(error) } },
          'external access token refused',
        );
        return null;
      }
      const sub = payload.sub ?? '';
      const claimed = claimAt(payload, this.#settings.rolesClaim);
      const roles = Array.isArray(claimed)
        ? claimed.filter((r): r is string => typeof r === 'string')
        : [];
      const amrClaim = Array.isArray(payload.amr) ? (payload.amr as unknown[]) : [];
      const amr: AuthMethod[] = ['pwd'];
      if (amrClaim.some((m) => m === 'otp' || m === 'mfa' || m === 'hwk')) amr.push('otp');
      const session =
        typeof payload.sid === 'string'
          ? payload.sid
          : typeof payload.jti === 'string'
            ? payload.jti
            : createHash('sha256').update(token).digest('base64url').slice(0, 22);
      known = {
        auth: {
          userId: externalUserId(this.#settings.issuer, sub),
          sessionId: `ext:${session.slice(0, 100)}`,
          tier: 'free',
          authenticatedAt: new Date(
            (typeof payload.auth_time === 'number' ? payload.auth_time : (payload.iat ?? 0)) * 1000,
          ),
          amr,
        },
        roles: this.#mapRoles(roles),
        expiresAt: (payload.exp ?? 0) * 1000,
        primedUntil: 0,
      };
      this.#verified.set(token, known);
    }
    if (known.primedUntil <= now) {
      await this.#prime(known.auth.userId, known.roles);
      known.primedUntil = now + (this.#options.permissionTtlS * 1000) / 2;
    }
    return known.auth;
  }

  #mapRoles(roles: readonly string[]): string[] {
    const map = this.#settings.roleMap;
    const mapped = map ? roles.flatMap((r) => (map.has(r) ? [map.get(r) as string] : [])) : roles;
    return [...new Set(mapped)].sort();
  }

  /** Writes the user's grants where `AccessControl` reads them (same key and tags). */
  async #prime(userId: string, roles: readonly string[]): Promise<void> {
    const rows =
      roles.length === 0
        ? []
        : await identityDb(this.#options.db)
            .selectFrom('gw_role')
            .select(['name', 'permissions', 'mfa_required'])
            .where('name', 'in', roles)
            .execute();
    const { cache } = this.#options;
    await cache.set(cache.userKey(userId, 'rbac'), foldGrants(rows), {
      ttlSeconds: this.#options.permissionTtlS,
      tags: [`rbac:user:${userId}`, 'rbac:roles'],
    });
  }
}
