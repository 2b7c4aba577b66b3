/**
 * Image processing for uploaded files (issue 15, item 3): probe a header before anything is
 * decoded, then one job turns an upload into a clean original (auto-oriented, every metadata block
 * stripped, colours converted to sRGB and the profile dropped) plus resized variants and a
 * blurhash. sharp (libvips) does the pixel work; this module decides the limits and the order.
 *
 * Decoding: a still image is decoded ONCE to raw sRGB pixels; the original and every variant are
 * encoded from those pixels, each smaller width resized from the next larger one. Measured
 * against one sharp pipeline `clone()`d per output (each clone decodes the input again) it costs
 * about 15% less CPU on a 12-megapixel JPEG (docs/benchmarks.md, Files). The price is memory:
 * width × height × channels bytes for the job's duration (36 MB at 12 MP), bounded by
 * `maxPixels`. Animated GIF/WebP go through cloned pipelines instead (the frames stay frames).
 *
 * Threads: libvips' own thread pool is left at sharp's default (`sharp.concurrency()`: the core
 * count, except 1 on glibc Linux without jemalloc, which sharp picks against memory
 * fragmentation). How many images run at once is the job queue's business (one per core).
 * With glibc's default malloc arenas a worker's RSS climbs to 500-700 MB over a few dozen large
 * images; `MALLOC_ARENA_MAX=2` holds it near 320-400 MB (docs/benchmarks.md, Files).
 */
import { encode as encodeBlurhash } from 'blurhash';
import sharp from 'sharp';
import type { Metadata, Sharp, SharpOptions } from 'sharp';
import {
  CONTENT_TYPES,
  ORIGINAL_ENCODING,
  VARIANT_CONTENT_TYPES,
  VARIANT_ENCODING,
  sniffInputFormat,
} from './image-formats.ts';
import type { ImageFormat, InputFormat } from './image-formats.ts';

export type { ImageFormat } from './image-formats.ts';

/** One variant a purpose asks for: a width (never upscaled) in one or more formats. */
export interface ImageVariantSpec {
  readonly name: string;
  readonly width: number;
  readonly formats: readonly ImageFormat[];
}

/** Limits checked from the header before decoding, and again by the decoder itself. */
export interface ImageLimits {
  /** Largest width × height × frames decoded (a decompression bomb is refused before decoding). */
  readonly maxPixels: number;
  /** Most frames of an animated GIF/WebP (more: `TOO_LARGE`). */
  readonly maxFrames: number;
}

/** Why an image was refused; stored as the file's failure reason. */
export type ImageFailure = 'UNSUPPORTED_TYPE' | 'TOO_LARGE' | 'CORRUPT' | 'TOO_MANY_PIXELS';

/** An image refused for a stable reason (`code`); any other error is the processor's own fault. */
export class ImageProcessingError extends Error {
  readonly code: ImageFailure;

  constructor(code: ImageFailure, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ImageProcessingError';
    this.code = code;
  }
}

/** What a header says (dimensions as displayed, after EXIF orientation). */
export interface ImageProbe {
  /** The input format decided by magic bytes: jpeg, png, webp, gif or avif. */
  readonly format: string;
  readonly width: number;
  readonly height: number;
  /** Frames of an animated GIF/WebP (1 otherwise); from a partial head it may undercount. */
  readonly pages: number;
}

export interface ProcessedImage {
  readonly width: number;
  readonly height: number;
  readonly blurhash: string;
  readonly original: { readonly data: Buffer; readonly contentType: string };
  readonly variants: readonly {
    readonly name: string;
    readonly format: ImageFormat;
    readonly width: number;
    readonly height: number;
    readonly contentType: string;
    readonly data: Buffer;
  }[];
}

export interface ProcessImageSpec {
  readonly variants: readonly ImageVariantSpec[];
  readonly limits: ImageLimits;
  /** Checked between steps: an aborted job stops at the next one with `signal.reason`. */
  readonly signal?: AbortSignal;
}

/** 256 and 1024 px wide, each in WebP and AVIF plus a JPEG fallback. */
export const DEFAULT_IMAGE_VARIANTS: readonly ImageVariantSpec[] = Object.freeze([
  Object.freeze({
    name: 'w256',
    width: 256,
    formats: Object.freeze(['webp', 'avif', 'jpeg'] as const),
  }),
  Object.freeze({
    name: 'w1024',
    width: 1024,
    formats: Object.freeze(['webp', 'avif', 'jpeg'] as const),
  }),
]);

/** 50 megapixels (a 48 MP phone photo passes; decoded, 150 MB of RGB) and 300 frames. */
export const DEFAULT_IMAGE_LIMITS: ImageLimits = Object.freeze({
  maxPixels: 50_000_000,
  maxFrames: 300,
});

/**
 * Head size callers should hand to `probeImage`: JPEG puts EXIF, ICC and XMP segments (up to
 * 64 KB each) before the frame header, so 64 KB is not always enough.
 */
export const PROBE_HEAD_BYTES = 256 * 1024;

const BLURHASH_SIZE = 32;
const BLURHASH_COMPONENTS = { x: 4, y: 3 } as const;

interface Inspected {
  readonly format: InputFormat;
  readonly metadata: Metadata;
  readonly probe: ImageProbe;
  readonly animated: boolean;
}

/**
 * Reads the type (magic bytes) and the header of `head` (the first bytes of an upload, e.g.
 * `PROBE_HEAD_BYTES`) without decoding pixels, and refuses what the limits forbid: a 50,000 ×
 * 50,000 PNG of a few kilobytes is refused in milliseconds.
 */
export async function probeImage(head: Buffer, limits: ImageLimits): Promise<ImageProbe> {
  return (await inspect(head, limits)).probe;
}

async function inspect(bytes: Buffer, limits: ImageLimits): Promise<Inspected> {
  const format = await sniffInputFormat(bytes);
  if (format === undefined) {
    throw new ImageProcessingError('UNSUPPORTED_TYPE', 'not a JPEG, PNG, WebP, GIF or AVIF image');
  }
  let metadata: Metadata;
  try {
    // Header only: libvips reads no pixel data for metadata(); the pixel limit is ours to check.
    metadata = await sharp(bytes, { limitInputPixels: false, failOn: 'none' }).metadata();
  } catch (error) {
    // libvips parses WebP with WebPDemux, which wants the whole file: read a head's size here.
    const size = format === 'webp' ? webpCanvasSize(bytes) : undefined;
    if (size === undefined) {
      throw new ImageProcessingError('CORRUPT', `unreadable ${format} header`, { cause: error });
    }
    metadata = { format: 'webp', ...size } as Metadata;
  }
  const expected = format === 'avif' ? 'heif' : format;
  if (metadata.format !== expected) {
    throw new ImageProcessingError('CORRUPT', `${format} magic bytes, ${metadata.format} header`);
  }
  if (format === 'avif' && metadata.compression !== 'av1') {
    throw new ImageProcessingError('UNSUPPORTED_TYPE', 'HEIF other than AVIF');
  }
  const { width, height } = metadata;
  if (!(width > 0 && height > 0)) {
    throw new ImageProcessingError('CORRUPT', 'no dimensions in the header');
  }
  const animated = (format === 'gif' || format === 'webp') && (metadata.pages ?? 1) > 1;
  const pages = animated ? (metadata.pages ?? 1) : 1;
  if (pages > limits.maxFrames) {
    throw new ImageProcessingError(
      'TOO_LARGE',
      `${String(pages)} frames (at most ${String(limits.maxFrames)})`,
    );
  }
  // `height` is one frame's for animated input: every frame is decoded.
  if (width * height * pages > limits.maxPixels) {
    throw new ImageProcessingError(
      'TOO_MANY_PIXELS',
      `${String(width)} × ${String(height)}${pages > 1 ? ` × ${String(pages)} frames` : ''} pixels (at most ${String(limits.maxPixels)})`,
    );
  }
  const swap = (metadata.orientation ?? 1) >= 5;
  return {
    format,
    metadata,
    animated,
    probe: { format, width: swap ? height : width, height: swap ? width : height, pages },
  };
}

/**
 * The canvas size in a WebP's first chunk (RIFF container, then VP8X, lossy VP8 or lossless
 * VP8L: https://developers.google.com/speed/webp/docs/riff_container), for a head too short for
 * libvips. Frames are not counted here (they follow); `processImage` counts them on the whole file.
 */
function webpCanvasSize(b: Buffer): { width: number; height: number } | undefined {
  if (
    b.length < 30 ||
    b.toString('latin1', 0, 4) !== 'RIFF' ||
    b.toString('latin1', 8, 12) !== 'WEBP'
  ) {
    return undefined;
  }
  switch (b.toString('latin1', 12, 16)) {
    case 'VP8X':
      return { width: b.readUIntLE(24, 3) + 1, height: b.readUIntLE(27, 3) + 1 };
    case 'VP8 ':
      // Key frame start code 9d 01 2a, then 14-bit width and height.
      if (b[23] !== 0x9d || b[24] !== 0x01 || b[25] !== 0x2a) return undefined;
      return { width: b.readUInt16LE(26) & 0x3fff, height: b.readUInt16LE(28) & 0x3fff };
    case 'VP8L': {
      if (b[20] !== 0x2f) return undefined;
      const bits = b.readUInt32LE(21);
      return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
    }
    default:
      return undefined;
  }
}

/** Maps a libvips failure to a reason; the message stays in `cause` for the log. */
function refused(error: unknown): ImageProcessingError {
  if (error instanceof ImageProcessingError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (/pixel limit/i.test(message)) {
    return new ImageProcessingError('TOO_MANY_PIXELS', 'pixel limit exceeded', { cause: error });
  }
  if (/unsupported image format/i.test(message)) {
    return new ImageProcessingError('UNSUPPORTED_TYPE', 'format not decodable', { cause: error });
  }
  return new ImageProcessingError('CORRUPT', 'the image data could not be decoded', {
    cause: error,
  });
}

/** Runs one libvips step; any failure but an abort becomes an `ImageProcessingError`. */
async function step<T>(signal: AbortSignal | undefined, work: () => Promise<T>): Promise<T> {
  signal?.throwIfAborted();
  try {
    return await work();
  } catch (error) {
    signal?.throwIfAborted();
    throw refused(error);
  }
}

/**
 * Decoder options for untrusted input: the pixel limit enforced by libvips too (it trusts the
 * header, which `inspect` has already bounded), sequential reads (no random access: lower memory),
 * and `failOn: 'error'`: a truncated or undecodable file fails (`CORRUPT`) while the harmless
 * warnings many camera JPEGs raise do not (sharp's default 'warning' refuses those).
 */
function decoderOptions(limits: ImageLimits): SharpOptions {
  return { limitInputPixels: limits.maxPixels, sequentialRead: true, failOn: 'error' };
}

interface Raw {
  readonly data: Buffer;
  readonly width: number;
  readonly height: number;
  readonly channels: 1 | 2 | 3 | 4;
}

const fromRaw = (raw: Raw): Sharp =>
  sharp(raw.data, { raw: { width: raw.width, height: raw.height, channels: raw.channels } });

/** Encodes in one variant format; JPEG has no alpha, so transparency becomes white. */
function encodeVariant(image: Sharp, format: ImageFormat, hasAlpha: boolean): Sharp {
  switch (format) {
    case 'jpeg':
      return (hasAlpha ? image.flatten({ background: '#ffffff' }) : image).jpeg(
        VARIANT_ENCODING.jpeg,
      );
    case 'png':
      return image.png(VARIANT_ENCODING.png);
    case 'webp':
      return image.webp(VARIANT_ENCODING.webp);
    case 'avif':
      return image.avif(VARIANT_ENCODING.avif);
  }
}

function encodeOriginal(image: Sharp, format: InputFormat): Sharp {
  switch (format) {
    case 'jpeg':
      return image.jpeg(ORIGINAL_ENCODING.jpeg);
    case 'png':
      return image.png(ORIGINAL_ENCODING.png);
    case 'webp':
      return image.webp(ORIGINAL_ENCODING.webp);
    case 'gif':
      return image.gif(ORIGINAL_ENCODING.gif);
    case 'avif':
      return image.avif(ORIGINAL_ENCODING.avif);
  }
}

async function blurhashOf(image: Sharp, signal: AbortSignal | undefined): Promise<string> {
  const { data, info } = await step(signal, () =>
    image
      .resize(BLURHASH_SIZE, BLURHASH_SIZE, { fit: 'inside' })
      .ensureAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true }),
  );
  return encodeBlurhash(
    new Uint8ClampedArray(data.buffer, data.byteOffset, data.byteLength),
    info.width,
    info.height,
    BLURHASH_COMPONENTS.x,
    BLURHASH_COMPONENTS.y,
  );
}

/** Distinct target widths, largest first, each clamped to the original's (never upscaled). */
function targetWidths(variants: readonly ImageVariantSpec[], width: number): number[] {
  for (const v of variants) {
    if (!Number.isInteger(v.width) || v.width < 1) {
      throw new RangeError(`variant ${v.name}: width must be a positive integer`);
    }
  }
  return [...new Set(variants.map((v) => Math.min(v.width, width)))].sort((a, b) => b - a);
}

/**
 * Decodes and re-encodes `input`: the clean original, `spec.variants` (width min(spec, original),
 * height by aspect ratio) and a blurhash. Refusals reject with `ImageProcessingError`; an abort
 * rejects with `spec.signal.reason`.
 */
export async function processImage(input: Buffer, spec: ProcessImageSpec): Promise<ProcessedImage> {
  const { signal, limits } = spec;
  signal?.throwIfAborted();
  const inspected = await inspect(input, limits);
  return inspected.animated
    ? processAnimated(input, inspected, spec)
    : processStill(input, inspected, spec);
}

async function processStill(
  input: Buffer,
  { format }: Inspected,
  { variants, limits, signal }: ProcessImageSpec,
): Promise<ProcessedImage> {
  // No withMetadata()/keep*(): the output carries no EXIF, XMP, IPTC or ICC; an embedded
  // profile is applied (converted to sRGB) on the way.
  const { data, info } = await step(signal, () =>
    sharp(input, decoderOptions(limits))
      .rotate()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true }),
  );
  const full: Raw = { data, width: info.width, height: info.height, channels: info.channels };
  const hasAlpha = info.channels === 4 || info.channels === 2;
  const original = await step(signal, () => encodeOriginal(fromRaw(full), format).toBuffer());

  const byWidth = new Map<number, { raw: Raw; encoded: Map<ImageFormat, Buffer> }>();
  let current = full;
  for (const width of targetWidths(variants, full.width)) {
    if (width < current.width) {
      const from = current;
      const resized = await step(signal, () =>
        fromRaw(from).resize({ width }).raw().toBuffer({ resolveWithObject: true }),
      );
      current = {
        data: resized.data,
        width: resized.info.width,
        height: resized.info.height,
        channels: resized.info.channels,
      };
    }
    byWidth.set(width, { raw: current, encoded: new Map() });
  }

  const out: ProcessedImage['variants'][number][] = [];
  for (const variant of variants) {
    const entry = byWidth.get(Math.min(variant.width, full.width));
    if (entry === undefined) throw new Error('unreachable: every variant width was resized');
    for (const fmt of variant.formats) {
      let encoded = entry.encoded.get(fmt);
      if (encoded === undefined) {
        encoded = await step(signal, () =>
          encodeVariant(fromRaw(entry.raw), fmt, hasAlpha).toBuffer(),
        );
        entry.encoded.set(fmt, encoded);
      }
      out.push({
        name: variant.name,
        format: fmt,
        width: entry.raw.width,
        height: entry.raw.height,
        contentType: VARIANT_CONTENT_TYPES[fmt],
        data: encoded,
      });
    }
  }
  const blurhash = await blurhashOf(fromRaw(current), signal);
  return {
    width: full.width,
    height: full.height,
    blurhash,
    original: { data: original, contentType: CONTENT_TYPES[format] },
    variants: out,
  };
}

/**
 * Animated GIF/WebP: the original stays animated in its own format and WebP variants stay
 * animated; AVIF, JPEG and PNG variants and the blurhash are made from the first frame.
 */
async function processAnimated(
  input: Buffer,
  { format, probe, metadata }: Inspected,
  { variants, limits, signal }: ProcessImageSpec,
): Promise<ProcessedImage> {
  const frames = sharp(input, { ...decoderOptions(limits), animated: true }).toColourspace('srgb');
  const first = sharp(input, decoderOptions(limits)).toColourspace('srgb');
  const { hasAlpha } = metadata;
  const original = await step(signal, () => encodeOriginal(frames.clone(), format).toBuffer());
  const out: ProcessedImage['variants'][number][] = [];
  for (const variant of variants) {
    const width = Math.min(variant.width, probe.width);
    for (const fmt of variant.formats) {
      const source = fmt === 'webp' ? frames : first;
      const { data, info } = await step(signal, () =>
        encodeVariant(source.clone().resize({ width }), fmt, hasAlpha).toBuffer({
          resolveWithObject: true,
        }),
      );
      out.push({
        name: variant.name,
        format: fmt,
        width: info.width,
        height: info.pageHeight ?? info.height,
        contentType: VARIANT_CONTENT_TYPES[fmt],
        data,
      });
    }
  }
  const blurhash = await blurhashOf(first.clone(), signal);
  return {
    width: probe.width,
    height: probe.height,
    blurhash,
    original: { data: original, contentType: CONTENT_TYPES[format] },
    variants: out,
  };
}
