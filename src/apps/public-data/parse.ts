import { Transform, type Readable } from 'node:stream';
import { parse } from 'csv-parse';

/** Why an import is refused as a whole (stored on the version as `failureCode`). */
export type RefusalCode =
  | 'FILE_TOO_LARGE'
  | 'INVALID_UTF8'
  | 'NO_HEADER'
  | 'TOO_MANY_COLUMNS'
  | 'TOO_MANY_INDEXED_COLUMNS'
  | 'LINE_TOO_LONG'
  | 'MALFORMED'
  | 'FILE_UNAVAILABLE';

export class ImportRefusal extends Error {
  readonly code: RefusalCode;
  constructor(code: RefusalCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** One record of a file: its fields, or why it is bad, with the line it ends on. */
export type FileRecord =
  | { readonly line: number; readonly fields: (string | null)[]; readonly error?: undefined }
  | { readonly line: number; readonly error: string; readonly fields?: undefined };

/**
 * Counts the bytes (refusing past `maxBytes`, so a huge file is never read whole) and decodes
 * UTF-8 strictly (a byte sequence that is not UTF-8 refuses the file, naming its line). The BOM
 * is dropped.
 */
function decodeUtf8(maxBytes: number): Transform {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let bytes = 0;
  let lines = 1;
  const count = (text: string) => {
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lines++;
  };
  return new Transform({
    readableObjectMode: false,
    decodeStrings: true,
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      if (bytes > maxBytes) {
        done(
          new ImportRefusal(
            'FILE_TOO_LARGE',
            `The file is larger than ${String(maxBytes)} bytes (PUBLIC_DATA_MAX_BYTES).`,
          ),
        );
        return;
      }
      let text: string;
      try {
        text = decoder.decode(chunk, { stream: true });
      } catch {
        // The line of the first byte that is not UTF-8: where a lenient decoder put U+FFFD.
        const lenient = new TextDecoder('utf-8').decode(chunk);
        const at = lenient.indexOf('\uFFFD');
        count(lenient.slice(0, at === -1 ? 0 : at));
        done(
          new ImportRefusal('INVALID_UTF8', `The file is not valid UTF-8 (line ${String(lines)}).`),
        );
        return;
      }
      count(text);
      done(null, text);
    },
    flush(done) {
      try {
        const rest = decoder.decode();
        done(null, rest);
      } catch {
        done(
          new ImportRefusal('INVALID_UTF8', `The file is not valid UTF-8 (line ${String(lines)}).`),
        );
      }
    },
  });
}

const MAX_RECORD = 8 * 1024 * 1024;

/** The records of a CSV file: the header first, then every row (quoted newlines, CRLF or LF). */
export async function* csvRecords(body: Readable, maxBytes: number): AsyncGenerator<FileRecord> {
  const skipped: FileRecord[] = [];
  const parser = parse({
    bom: true,
    relax_column_count: true,
    // CRLF and LF mixed in one file (auto-detection would keep the first one seen).
    record_delimiter: ['\r\n', '\n'],
    skip_empty_lines: true,
    skip_records_with_error: true,
    max_record_size: MAX_RECORD,
    info: true,
    on_skip: (error) => {
      skipped.push({
        line: Number(error?.lines ?? 0),
        error: error?.message ?? 'The row cannot be read.',
      });
      return undefined;
    },
  });
  const decode = decodeUtf8(maxBytes);
  body.on('error', (e) => decode.destroy(e));
  decode.on('error', (e) => parser.destroy(e));
  body.pipe(decode).pipe(parser);
  try {
    for await (const item of parser as AsyncIterable<{
      record: string[];
      info: { lines: number };
    }>) {
      while (skipped.length > 0) yield skipped.shift() as FileRecord;
      yield { line: item.info.lines, fields: item.record };
    }
    while (skipped.length > 0) yield skipped.shift() as FileRecord;
  } catch (error) {
    if (error instanceof ImportRefusal) throw error;
    const code = (error as { code?: string }).code;
    if (code === 'CSV_MAX_RECORD_SIZE')
      throw new ImportRefusal('LINE_TOO_LONG', 'A row is longer than 8 MiB.');
    throw new ImportRefusal('MALFORMED', `The CSV cannot be read: ${(error as Error).message}`);
  } finally {
    body.destroy();
  }
}

/** A JSON value of an NDJSON row as the text a column holds (numbers exactly as written). */
function fieldText(value: unknown, source: string | undefined): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return source ?? String(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'object') {
    const o = value as Record<string, unknown>;
    // A point: {"lat": .., "lng": ..} or GeoJSON {"type": "Point", "coordinates": [lng, lat]}.
    if (typeof o.lat === 'number' && (typeof o.lng === 'number' || typeof o.lon === 'number'))
      return `${String(o.lat)},${String(typeof o.lng === 'number' ? o.lng : o.lon)}`;
    if (o.type === 'Point' && Array.isArray(o.coordinates) && o.coordinates.length === 2) {
      const [lng, lat] = o.coordinates as unknown[];
      if (typeof lat === 'number' && typeof lng === 'number')
        return `${String(lat)},${String(lng)}`;
    }
    return JSON.stringify(value);
  }
  return JSON.stringify(value) ?? null;
}

/** Parses one NDJSON line into an object of field texts, or the reason it is bad. */
export function ndjsonObject(line: string): Map<string, string | null> | string {
  // Numbers keep the digits as written (JSON.parse would round big integers and decimals).
  const sources = new WeakMap<object, Map<string, string>>();
  let parsed: unknown;
  try {
    parsed = JSON.parse(line, function (this: unknown, key, value, context?: { source?: string }) {
      if (
        typeof value === 'number' &&
        this !== null &&
        typeof this === 'object' &&
        context?.source
      ) {
        let holder = sources.get(this);
        if (holder === undefined) sources.set(this, (holder = new Map<string, string>()));
        holder.set(key, context.source);
      }
      return value as unknown;
    });
  } catch (error) {
    return `Not JSON: ${(error as Error).message}`;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    return 'Not a JSON object.';
  const fields = new Map<string, string | null>();
  const own = sources.get(parsed);
  for (const [key, value] of Object.entries(parsed as Record<string, unknown>))
    fields.set(key, fieldText(value, own?.get(key)));
  return fields;
}

/** The lines of an NDJSON file (LF or CRLF), blank lines skipped, with their numbers. */
export async function* ndjsonLines(
  body: Readable,
  maxBytes: number,
): AsyncGenerator<{ line: number; text: string }> {
  const decode = decodeUtf8(maxBytes);
  body.on('error', (e) => decode.destroy(e));
  body.pipe(decode);
  let rest = '';
  let line = 0;
  try {
    for await (const chunk of decode as AsyncIterable<string | Buffer>) {
      const text = rest + (typeof chunk === 'string' ? chunk : chunk.toString('utf8'));
      let start = 0;
      for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', start)) {
        line++;
        const one = text.slice(start, i).replace(/\r$/, '');
        start = i + 1;
        if (one.trim() !== '') yield { line, text: one };
      }
      rest = text.slice(start);
      if (rest.length > MAX_RECORD)
        throw new ImportRefusal('LINE_TOO_LONG', `Line ${String(line + 1)} is longer than 8 MiB.`);
    }
    if (rest.trim() !== '') yield { line: line + 1, text: rest.replace(/\r$/, '') };
  } finally {
    body.destroy();
  }
}
