import { createHash } from 'node:crypto';

/**
 * Our idempotency marker, carried where a platform keeps it so that an unknown outcome can be
 * settled by looking the post up. Instagram captions and Facebook posts have no hidden field, so
 * the marker rides at the end of the text as invisible characters: U+2063 (invisible separator)
 * then 48 bits of the marker's SHA-256 as 24 zero-width characters (2 bits each). Readers see
 * nothing; `MARKER_LENGTH` is deducted from the platforms' text limits.
 */
const START = '\u2063';
const DIGITS = ['\u200b', '\u200c', '\u200d', '\u2060'] as const;
export const MARKER_LENGTH = 25;

export function invisibleMarker(marker: string): string {
  const bytes = createHash('sha256').update(marker).digest().subarray(0, 6);
  let out = START;
  for (const byte of bytes)
    for (let shift = 6; shift >= 0; shift -= 2) out += DIGITS[(byte >> shift) & 3];
  return out;
}

/** The text as sent: the author's text and the invisible marker. */
export function withInvisibleMarker(text: string, marker: string): string {
  return `${text}${invisibleMarker(marker)}`;
}

/** Whether `text` (as the platform answers it) carries `marker`. */
export function carriesMarker(text: string | undefined | null, marker: string): boolean {
  return typeof text === 'string' && text.includes(invisibleMarker(marker));
}

/** The invisible marker at the end of `text`, if any (for the fakes' listing). */
export function trailingMarker(text: string): string | null {
  const at = text.lastIndexOf(START);
  if (at < 0 || text.length - at !== MARKER_LENGTH) return null;
  return text.slice(at);
}

/** YouTube keeps tags hidden from viewers: the marker is one tag. */
export function markerTag(marker: string): string {
  return `gw${createHash('sha256').update(marker).digest('hex').slice(0, 16)}`;
}
