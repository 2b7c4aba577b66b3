import { createHash, randomBytes } from 'node:crypto';
import { SealedBox } from '../encoding/index.ts';

/** Identity's sealed secrets (refresh successors, TOTP secrets, OIDC verifiers): `SealedBox`. */
export { SealedBox as TokenBox };

/** A new opaque secret for a mail link or a refresh token: 32 random bytes, base64url. */
export function newOpaqueToken(): string {
  return randomBytes(32).toString('base64url');
}

/** What is stored of an opaque token: its SHA-256 (hex). The token itself is never stored. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
