import { Readable } from 'node:stream';
import { fileTypeFromBuffer } from 'file-type';

/**
 * Bytes read ahead of storing an upload: enough for `file-type` (which reads at most 4,100 for
 * most formats) and for an image header, even behind a large EXIF block (JPEG's frame header
 * comes after it; a header that is not within this window is reported as corrupt).
 */
export const HEAD_BYTES = 256 * 1024;

/**
 * Reads up to `bytes` from the start of `source` and returns them with a stream of the whole
 * body (the head, then the rest of `source`), so the type can be decided before anything is
 * stored while the body still streams. Ending or destroying the returned stream early stops
 * reading `source` without destroying it (a multipart parser then skips the rest of the part).
 */
export async function peek(
  source: Readable,
  bytes = HEAD_BYTES,
): Promise<{ head: Buffer; body: Readable; ended: boolean }> {
  const iterator = source.iterator({ destroyOnReturn: false });
  const chunks: Buffer[] = [];
  let size = 0;
  let ended = false;
  while (size < bytes) {
    const next = await iterator.next();
    if (next.done === true) {
      ended = true;
      break;
    }
    const chunk: unknown = next.value;
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    chunks.push(buffer);
    size += buffer.length;
  }
  const all = Buffer.concat(chunks);
  const head = all.subarray(0, Math.min(all.length, bytes));
  async function* whole(): AsyncGenerator<Buffer> {
    try {
      yield all;
      if (ended) return;
      for (;;) {
        const next = await iterator.next();
        if (next.done === true) return;
        const chunk: unknown = next.value;
        yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
      }
    } finally {
      // Stopped early (a size cap): leave the source readable but unread.
      if (!ended) source.pause();
    }
  }
  return { head, body: Readable.from(whole(), { objectMode: false }), ended };
}

/** The type of the bytes (magic numbers), or null when `file-type` does not recognise them. */
export async function detectType(head: Buffer): Promise<{ mime: string; ext: string } | null> {
  if (head.length === 0) return null;
  const found = await fileTypeFromBuffer(head);
  return found ? { mime: found.mime, ext: found.ext } : null;
}

/** What a head that matched no magic number is, read as text. */
export type TextHead =
  /** Starts with `<` (HTML, SVG, XML): a browser may run it, so it is never text. */
  | { kind: 'markup' }
  /** NUL bytes or invalid UTF-8: not text. */
  | { kind: 'binary' }
  /** UTF-8 text; `json`: its first character (after a BOM and white space) is `{`. */
  | { kind: 'text'; json: boolean };

/**
 * Reads a head as text. `whole`: the head is the entire file; otherwise a multi-byte sequence
 * cut at its end is fine (the rest is in the bytes not read here).
 */
export function sniffText(head: Buffer, whole: boolean): TextHead {
  if (head.includes(0)) return { kind: 'binary' };
  try {
    // `stream: true` keeps back an incomplete trailing sequence instead of failing on it.
    const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
    decoder.decode(head, { stream: !whole });
  } catch {
    return { kind: 'binary' };
  }
  let i = head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf ? 3 : 0;
  // White space: tab, LF, VT, FF, CR, space.
  for (let b = head[i]; b !== undefined && (b === 0x20 || (b >= 0x09 && b <= 0x0d)); b = head[i])
    i++;
  // Browsers sniff HTML and XML from a leading `<` (WHATWG MIME Sniffing); no CSV or NDJSON
  // starts with one, so refusing it keeps markup from being stored under a text type.
  if (head[i] === 0x3c) return { kind: 'markup' };
  return { kind: 'text', json: head[i] === 0x7b };
}

const MAX_FILENAME = 200;

/**
 * A client's file name made safe to show and to put in `Content-Disposition`: the last path
 * segment only (no `../`), control characters (NUL included) and quotes dropped, Unicode
 * normalised, at most 200 characters keeping the extension; `file` when nothing is left.
 */
export function sanitizeFilename(raw: string | undefined): string {
  if (raw === undefined) return 'file';
  let name = raw.normalize('NFC');
  name = name.slice(Math.max(name.lastIndexOf('/'), name.lastIndexOf('\\')) + 1);
  // Controls (C0, DEL, C1), bidi overrides and the characters quoting would need.
  name = name.replace(
    // eslint-disable-next-line no-control-regex -- removing control characters is the point
    /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069"*:<>?|]/g,
    '',
  );
  name = name.trim().replace(/^\.+/, '');
  if ([...name].length > MAX_FILENAME) {
    const chars = [...name];
    const dot = name.lastIndexOf('.');
    const ext = dot > 0 && name.length - dot <= 16 ? [...name.slice(dot)] : [];
    name = chars.slice(0, MAX_FILENAME - ext.length).join('') + ext.join('');
  }
  return name === '' ? 'file' : name;
}

/**
 * `Content-Disposition` for a sanitised name (RFC 6266): an ASCII fallback in `filename` and
 * the UTF-8 name in `filename*` (RFC 8187). Written here rather than with the `content-disposition`
 * package, which is only a transitive dependency; the input is already sanitised.
 */
export function contentDisposition(kind: 'inline' | 'attachment', filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '_');
  const encoded = encodeURIComponent(filename).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

/** The file extension of a content type, for the served original's name. */
export function extensionOf(contentType: string): string {
  const map: Record<string, string> = {
    'image/jpeg': 'jpg',
    'image/png': 'png',
    'image/webp': 'webp',
    'image/avif': 'avif',
    'image/gif': 'gif',
    'image/tiff': 'tiff',
    'application/pdf': 'pdf',
    'text/csv': 'csv',
    'application/x-ndjson': 'ndjson',
    'text/plain': 'txt',
  };
  return map[contentType] ?? 'bin';
}
