import { createHash, type Hash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback, type Writable } from 'node:stream';
import { ObjectMismatchError, ObjectTooLargeError, type PutOptions } from './types.ts';

/**
 * Counts and hashes (SHA-256) the bytes passing through, and fails at once when they pass
 * `maxBytes` or the announced `contentLength`; at the end, when they fall short of the length
 * or do not have the announced checksum.
 */
export class Meter extends Transform {
  readonly #hash: Hash = createHash('sha256');
  readonly #maxBytes: number | undefined;
  readonly #contentLength: number | undefined;
  readonly #checksum: string | undefined;
  bytes = 0;
  /** The refusal, once made (a write racing the teardown may report another error after it). */
  failure: Error | undefined;
  #digest: string | undefined;

  constructor(options: Pick<PutOptions, 'maxBytes' | 'contentLength' | 'checksumSha256'>) {
    super();
    this.#maxBytes = options.maxBytes;
    this.#contentLength = options.contentLength;
    this.#checksum = options.checksumSha256;
  }

  /** Base64 SHA-256 of the bytes, once they have all passed. */
  get checksumSha256(): string {
    this.#digest ??= this.#hash.digest('base64');
    return this.#digest;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.#maxBytes !== undefined && this.bytes > this.#maxBytes) {
      done((this.failure = new ObjectTooLargeError(this.#maxBytes)));
      return;
    }
    if (this.#contentLength !== undefined && this.bytes > this.#contentLength) {
      done((this.failure = new ObjectMismatchError('length')));
      return;
    }
    this.#hash.update(chunk);
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    const error = checkComplete(this.bytes, this.checksumSha256, this);
    if (error) this.failure = error;
    done(error);
  }

  /** The announced values, for a check of bytes already hashed elsewhere. */
  get expected(): { contentLength?: number; checksumSha256?: string } {
    return { contentLength: this.#contentLength, checksumSha256: this.#checksum };
  }
}

function checkComplete(
  bytes: number,
  checksum: string,
  meter: { expected: { contentLength?: number; checksumSha256?: string } },
): Error | null {
  const { contentLength, checksumSha256 } = meter.expected;
  if (contentLength !== undefined && bytes !== contentLength)
    return new ObjectMismatchError('length');
  if (checksumSha256 !== undefined && checksum !== checksumSha256)
    return new ObjectMismatchError('checksum');
  return null;
}

/** Size and checksum of a buffer, checked against the options as `Meter` checks a stream. */
export function meterBuffer(
  body: Buffer,
  options: Pick<PutOptions, 'maxBytes' | 'contentLength' | 'checksumSha256'>,
): { size: number; checksumSha256: string } {
  if (options.maxBytes !== undefined && body.length > options.maxBytes)
    throw new ObjectTooLargeError(options.maxBytes);
  const checksumSha256 = createHash('sha256').update(body).digest('base64');
  const error = checkComplete(body.length, checksumSha256, {
    expected: { contentLength: options.contentLength, checksumSha256: options.checksumSha256 },
  });
  if (error) throw error;
  return { size: body.length, checksumSha256 };
}

function ignore(): void {}

/**
 * Pipes `source` through `meter` into `dest` and resolves once `dest` has finished. On any
 * failure (the meter's refusal, a write error, the source failing or ending early, `signal`)
 * it stops reading at once: `source` is unpiped and paused but NOT destroyed, since its owner
 * decides what to do with the rest (an HTTP request answers 413 and closes the connection; a
 * multipart parser skips the part). `dest` and the meter are destroyed.
 */
export function meteredCopy(
  source: Readable,
  meter: Meter,
  dest: Writable,
  signal?: AbortSignal,
): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    let settled = false;
    let ended = false;
    const cleanup = () => {
      source.off('error', onError);
      source.off('end', onEnd);
      source.off('close', onSourceClose);
      meter.off('error', onError);
      dest.off('error', onError);
      dest.off('finish', onFinish);
      signal?.removeEventListener('abort', onAbort);
    };
    const onError = (error: unknown) => {
      if (settled) return;
      settled = true;
      cleanup();
      source.unpipe(meter);
      source.pause();
      // Writes racing the teardown report errors of their own: heard, and not the reason.
      meter.on('error', ignore);
      dest.on('error', ignore);
      meter.destroy();
      dest.destroy();
      reject(meter.failure ?? (error instanceof Error ? error : new Error(String(error))));
    };
    const onEnd = () => {
      ended = true;
    };
    // A request whose client went away closes without 'end' (and sometimes without 'error').
    const onSourceClose = () => {
      if (!ended) onError(new Error('the body ended before it was complete'));
    };
    const onFinish = () => {
      if (settled) return;
      settled = true;
      cleanup();
      resolvePromise();
    };
    const onAbort = () => {
      onError(signal?.reason ?? new Error('aborted'));
    };
    if (signal?.aborted) {
      onAbort();
      return;
    }
    source.on('error', onError);
    source.on('end', onEnd);
    source.on('close', onSourceClose);
    meter.on('error', onError);
    dest.on('error', onError);
    dest.on('finish', onFinish);
    signal?.addEventListener('abort', onAbort, { once: true });
    source.pipe(meter).pipe(dest);
  });
}
