const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const SYNTAX = /^[A-Za-z0-9_-]*$/;

/**
 * True when `text` is base64url exactly as an encoder writes it: its alphabet, no padding, no
 * impossible length, and the unused low bits of the last character zero. Decoders ignore those
 * bits, so without this check four texts (sixteen for one spare byte) decode to the same bytes:
 * a token compared or cached by its text would be "another" token with the same signature.
 * Same answer as decoding, re-encoding and comparing, without allocating.
 */
export function isCanonicalBase64url(text: string): boolean {
  if (!SYNTAX.test(text)) return false;
  switch (text.length % 4) {
    case 0:
      return true;
    case 1:
      return false;
    case 2:
      // 12 bits written, 8 used: the last character's low 4 bits are spare.
      return (ALPHABET.indexOf(text.charAt(text.length - 1)) & 0b1111) === 0;
    default:
      // 18 bits written, 16 used: the last character's low 2 bits are spare.
      return (ALPHABET.indexOf(text.charAt(text.length - 1)) & 0b11) === 0;
  }
}

/** The bytes of canonical base64url text (see `isCanonicalBase64url`); null for any other text. */
export function decodeBase64url(text: string): Buffer | null {
  return isCanonicalBase64url(text) ? Buffer.from(text, 'base64url') : null;
}
