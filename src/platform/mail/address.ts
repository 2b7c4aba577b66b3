import type { FieldError } from '../http/index.ts';

export const MAX_ADDRESS_LENGTH = 254;
// eslint-disable-next-line no-control-regex -- control characters are what this refuses
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
/** Local part: no whitespace, no address-list or display-name syntax. */
const LOCAL = /^[^\s@<>()[\]\\,;:"]{1,64}$/u;
/** Domain: dot-separated labels of letters, digits and hyphens (Unicode letters allowed). */
const DOMAIN =
  // eslint-disable-next-line security/detect-unsafe-regex -- labels are split on '.', outside the label class; within a label the backtracking is linear
  /^[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?(?:\.[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?)*$/u;

/**
 * Why a recipient is refused: it must be one plain address (`local@domain`), without display
 * name, list, line breaks or other control characters, at most 254 characters. Empty when fine.
 */
export function recipientErrors(to: unknown, path = '/to'): FieldError[] {
  if (typeof to !== 'string') return [{ path, message: 'must be a string' }];
  if (CONTROL.test(to)) {
    return [{ path, message: 'must not contain line breaks or other control characters' }];
  }
  if (to.length > MAX_ADDRESS_LENGTH) {
    return [{ path, message: `must be at most ${MAX_ADDRESS_LENGTH} characters` }];
  }
  const at = to.lastIndexOf('@');
  const local = to.slice(0, at);
  const domain = to.slice(at + 1);
  if (at < 1 || !LOCAL.test(local) || !DOMAIN.test(domain) || domain.length > 253) {
    return [{ path, message: 'must be one plain address such as name@example.com' }];
  }
  return [];
}
