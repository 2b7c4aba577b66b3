import { resolve, sep } from 'node:path';

/** Longest object key accepted (S3 allows 1,024 bytes; ours are far shorter). */
export const KEY_MAX_LENGTH = 512;
/** Most segments in a key (`files/<id>/<variant>` has three). */
export const KEY_MAX_SEGMENTS = 16;

/**
 * One segment: ASCII letters, digits, `.`, `_`, `-`, starting with a letter or digit (so never
 * `.`, `..` or a hidden name, which the local driver keeps for its own files), 128 at most.
 * ASCII only: no look-alike dots or slashes, no control or direction characters.
 */
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** A key refused by `objectKey`/`assertObjectKey` (a platform bug, never a client's input). */
export class InvalidObjectKeyError extends Error {
  constructor(reason: string) {
    super(`invalid object key: ${reason}`);
    this.name = 'InvalidObjectKeyError';
  }
}

/** Why `key` is not a valid object key, or null when it is. */
export function objectKeyProblem(key: string): string | null {
  if (typeof key !== 'string' || key.length === 0) return 'empty';
  if (key.length > KEY_MAX_LENGTH) return `longer than ${String(KEY_MAX_LENGTH)} characters`;
  const segments = key.split('/');
  if (segments.length > KEY_MAX_SEGMENTS) return `more than ${String(KEY_MAX_SEGMENTS)} segments`;
  for (const segment of segments) {
    if (!SEGMENT.test(segment))
      return 'a segment is empty, hidden, or has characters outside [A-Za-z0-9._-]';
  }
  return null;
}

/** Whether `key` is a valid object key. */
export function isObjectKey(key: string): boolean {
  return objectKeyProblem(key) === null;
}

/** Throws `InvalidObjectKeyError` unless `key` is a valid object key. */
export function assertObjectKey(key: string): void {
  const problem = objectKeyProblem(key);
  if (problem !== null) throw new InvalidObjectKeyError(problem);
}

/**
 * An object key made of platform-chosen segments: `objectKey('files', fileId, 'w256.webp')` →
 * `files/<fileId>/w256.webp`. Keys are never taken from a client (names a client gives go into
 * `Content-Disposition`, not here); each segment is checked, and a bad one throws.
 */
export function objectKey(...segments: readonly string[]): string {
  const key = segments.join('/');
  assertObjectKey(key);
  return key;
}

/**
 * Whether `prefix` is a valid listing prefix: empty, or a key, or a key followed by `/`, or the
 * start of a segment (`files/0193`).
 */
export function isKeyPrefix(prefix: string): boolean {
  if (prefix === '') return true;
  const body = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  return isObjectKey(body);
}

/**
 * The file of `key` under `root` (absolute). The key is checked, and the resolved path must stay
 * strictly inside `root`: a bad key can never reach outside it, whatever the check above lets by.
 */
export function pathUnder(root: string, key: string): string {
  assertObjectKey(key);
  const base = resolve(root);
  const path = resolve(base, key);
  if (!path.startsWith(base + sep)) throw new InvalidObjectKeyError('escapes the storage folder');
  return path;
}
