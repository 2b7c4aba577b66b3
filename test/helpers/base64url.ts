const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * The same base64url text with the lowest spare bit of its last character set: decoders return
 * the same bytes, but the text differs. Undefined when the length leaves no spare bits.
 */
export function withSpareBits(text: string): string | undefined {
  if (text.length % 4 < 2) return undefined;
  const last = ALPHABET.indexOf(text.charAt(text.length - 1));
  return `${text.slice(0, -1)}${ALPHABET.charAt(last | 1)}`;
}
