// Input formats accepted for images, how they are recognized, and the encoder settings of outputs.
import { fileTypeFromBuffer } from 'file-type';
import type { AvifOptions, GifOptions, JpegOptions, PngOptions, WebpOptions } from 'sharp';

/** Output formats of variants. */
export type ImageFormat = 'webp' | 'avif' | 'jpeg' | 'png';

/** Input formats decoded; everything else (SVG, HEIC, TIFF, PDF, HTML...) is refused unread. */
export type InputFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'avif';

export const CONTENT_TYPES: Readonly<Record<InputFormat, string>> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  gif: 'image/gif',
  avif: 'image/avif',
};

/**
 * The type by magic bytes (`file-type`), before sharp sees a byte: SVG and other text formats
 * have no magic number, so they come back `undefined` and are never parsed by librsvg.
 * An animated PNG (APNG) is a PNG whose first frame is kept.
 */
export async function sniffInputFormat(head: Buffer): Promise<InputFormat | undefined> {
  const mime = (await fileTypeFromBuffer(head))?.mime;
  return mime === undefined ? undefined : BY_MIME.get(mime);
}

const BY_MIME: ReadonlyMap<string, InputFormat> = new Map([
  ['image/jpeg', 'jpeg'],
  ['image/png', 'png'],
  ['image/apng', 'png'],
  ['image/webp', 'webp'],
  ['image/gif', 'gif'],
  ['image/avif', 'avif'],
]);

/**
 * Encoder settings, the same for every caller (and for the benchmark's raw sharp baseline).
 * The original is kept near its source quality; variants are for display. AVIF at effort 4 is
 * sharp's default and by far the most expensive output (see docs/benchmarks.md, Files).
 */
export const ORIGINAL_ENCODING = {
  jpeg: { quality: 90, progressive: true } satisfies JpegOptions,
  png: { compressionLevel: 6 } satisfies PngOptions,
  webp: { quality: 90, effort: 4 } satisfies WebpOptions,
  gif: {} satisfies GifOptions,
  avif: { quality: 60, effort: 4 } satisfies AvifOptions,
} as const;

export const VARIANT_ENCODING = {
  jpeg: { quality: 80, progressive: true } satisfies JpegOptions,
  png: { compressionLevel: 6 } satisfies PngOptions,
  webp: { quality: 80, effort: 4 } satisfies WebpOptions,
  avif: { quality: 50, effort: 4 } satisfies AvifOptions,
} as const;

export const VARIANT_CONTENT_TYPES: Readonly<Record<ImageFormat, string>> = {
  webp: 'image/webp',
  avif: 'image/avif',
  jpeg: 'image/jpeg',
  png: 'image/png',
};
