/** An output format of image variants. */
export type FileImageFormat = 'webp' | 'avif' | 'jpeg' | 'png';

/**
 * A kind of file a module accepts (`filePurposes`), e.g. `spots.picture`: the files area checks
 * every upload against it (size, types by content, pixels) and makes the variants it asks for.
 * Names are unique across modules (a duplicate refuses to start).
 */
export interface FilePurpose {
  /** `module.what`: lowercase, one dot (`spots.picture`, `shop.item-image`). */
  readonly name: string;
  readonly description: string;
  /** `image`: decoded, stripped of metadata and resized in a job; `document`: stored as sent. */
  readonly kind: 'image' | 'document';
  /** The largest upload, in bytes (413 past it). */
  readonly maxBytes: number;
  /** Types accepted, as decided from the bytes (never the client's header or name). */
  readonly contentTypes: readonly string[];
  /** Who may read a file: its owner (and `files:admin`), or anyone. */
  readonly read: 'owner' | 'public';
  /** Images only: decompression-bomb limits and the variants made. */
  readonly image?: {
    readonly maxPixels: number;
    readonly maxFrames: number;
    readonly variants: readonly {
      readonly name: string;
      readonly width: number;
      readonly formats: readonly FileImageFormat[];
    }[];
  };
}
