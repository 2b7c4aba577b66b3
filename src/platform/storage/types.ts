import type { Readable } from 'node:stream';

/** What the store knows of one object. */
export interface StoredObject {
  readonly key: string;
  readonly size: number;
  readonly contentType: string;
  /** Opaque validator for HTTP caching (quoted by the HTTP layer, not here). */
  readonly etag: string;
  /** Base64 SHA-256 of the bytes, when the store computed or verified it. */
  readonly checksumSha256: string | null;
  readonly lastModified: Date;
}

export interface PutOptions {
  readonly contentType: string;
  /** Bytes announced; a body of another length is refused (and nothing is kept). */
  readonly contentLength?: number;
  /** Base64 SHA-256 the bytes must have (refused and removed otherwise). */
  readonly checksumSha256?: string;
  /**
   * Largest body accepted: past it the write stops at once, the partial object is removed and
   * `put` rejects with `ObjectTooLargeError` (the stream is not read to its end).
   */
  readonly maxBytes?: number;
  readonly signal?: AbortSignal;
}

export interface ByteRange {
  readonly start: number;
  /** Inclusive; absent: to the end. */
  readonly end?: number;
}

export interface ObjectStream {
  readonly body: Readable;
  readonly object: StoredObject;
  /** The range served, inclusive, when one was asked and satisfiable. */
  readonly range: { readonly start: number; readonly end: number } | null;
}

export interface SignedGetOptions {
  readonly expiresInSeconds: number;
  /** `attachment; filename="..."` or `inline`; encoded safely by the store. */
  readonly contentDisposition?: string;
  readonly contentType?: string;
}

/** What a presigned PUT binds: the type, exact length and SHA-256 of the bytes, and its lifetime. */
export interface PresignPutOptions {
  readonly contentType: string;
  readonly contentLength: number;
  /** Base64 SHA-256 of the bytes. */
  readonly checksumSha256: string;
  readonly expiresInSeconds: number;
}

export interface PresignedPut {
  readonly url: string;
  readonly method: 'PUT';
  /** Headers the client must send as they are (content type, length, checksum). */
  readonly headers: Readonly<Record<string, string>>;
  readonly expiresAt: Date;
}

/**
 * Object storage (`platform.storage`): a local directory (default, under `DATA_DIR`) or an
 * S3-compatible bucket, behind one interface. Keys are made by the platform (`objectKey`), never
 * taken from a client; objects are private; reads by clients go through short-lived signed URLs.
 */
export interface Storage {
  readonly driver: 'local' | 's3';
  /** Streams `body` into the object `key` (replacing it), enforcing the options' limits. */
  put(key: string, body: Readable | Buffer, options: PutOptions): Promise<StoredObject>;
  /** The object's bytes (or a range of them); null when it does not exist. */
  get(key: string, options?: { range?: ByteRange }): Promise<ObjectStream | null>;
  head(key: string): Promise<StoredObject | null>;
  /** Removes the object; no error when it does not exist. */
  delete(key: string): Promise<void>;
  /** Objects under a prefix (for the orphan purge), oldest first, a page at a time. */
  list(prefix: string, options?: { limit?: number; after?: string }): Promise<StoredObject[]>;
  /** A URL a client can GET the object from until it expires. */
  signedGetUrl(key: string, options: SignedGetOptions): Promise<string>;
  /** A URL a client can PUT exactly these bytes to (length and checksum bound where the store can). */
  presignPut(key: string, options: PresignPutOptions): Promise<PresignedPut>;
  /** Readiness: the bucket or directory answers. */
  ping(signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/** Thrown by `put` when the body passes `maxBytes` (the partial object is removed). */
export class ObjectTooLargeError extends Error {
  readonly maxBytes: number;
  constructor(maxBytes: number) {
    super(`object larger than ${String(maxBytes)} bytes`);
    this.name = 'ObjectTooLargeError';
    this.maxBytes = maxBytes;
  }
}

/** Thrown by `put` when the body does not match `contentLength` or `checksumSha256`. */
export class ObjectMismatchError extends Error {
  readonly reason: 'length' | 'checksum';
  constructor(reason: 'length' | 'checksum') {
    super(`object ${reason} does not match`);
    this.name = 'ObjectMismatchError';
    this.reason = reason;
  }
}
