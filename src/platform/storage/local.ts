import { randomBytes } from 'node:crypto';
import { constants, createWriteStream } from 'node:fs';
import {
  access,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  rmdir,
  writeFile,
} from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { translateFsError } from './errors.ts';
import { isKeyPrefix, pathUnder } from './keys.ts';
import { assertMediaType } from './media-type.ts';
import { safeDisposition, type UrlSigner } from './signed-urls.ts';
import { Meter, meterBuffer, meteredCopy } from './streams.ts';
import type {
  ByteRange,
  ObjectStream,
  PresignedPut,
  PutOptions,
  SignedGetOptions,
  Storage,
  StoredObject,
  PresignPutOptions,
} from './types.ts';
import type { Readable } from 'node:stream';

/** Where the local driver's signed URLs point, under the API prefix. */
export const LOCAL_OBJECTS_PATH = '/api/v1/storage/objects';

/** The sidecar of one object: what `head` answers, and which file holds the bytes. */
interface Meta {
  readonly v: 1;
  readonly file: string;
  readonly size: number;
  readonly contentType: string;
  readonly checksumSha256: string;
  readonly etag: string;
  readonly lastModified: string;
}

const META = '.meta.json';

export interface LocalStorageOptions {
  /** The folder holding every object (made when first needed). */
  readonly root: string;
  /** `PUBLIC_URL`: signed URLs point at this server. */
  readonly publicUrl: string;
  readonly signer: UrlSigner;
}

/**
 * Objects in a folder. Each key is a directory under the root (`<root>/files/<id>/original/`)
 * holding the bytes in a file named by a random version (`.v-<random>`) and the sidecar
 * `.meta.json` (type, size, SHA-256, ETag) that names it. Names starting with `.` cannot be key
 * segments, so objects under an object's key (`a` and `a/b`) never collide with these files.
 *
 * A write streams into a temporary file in the object's directory, hashing and counting, then
 * renames it into place and renames a new sidecar over the old one: the sidecar's rename is the
 * commit, so a reader sees the old object or the new one, never a mix, and an interrupted write
 * leaves no object. The previous version's bytes are removed after (a reader that opened them
 * keeps reading). No fsync: a crash may lose the last writes, never mix them.
 */
export class LocalStorage implements Storage {
  readonly driver = 'local' as const;
  readonly root: string;
  readonly #publicUrl: string;
  readonly #signer: UrlSigner;

  constructor(options: LocalStorageOptions) {
    this.root = resolve(options.root);
    this.#publicUrl = options.publicUrl.replace(/\/+$/, '');
    this.#signer = options.signer;
  }

  async put(key: string, body: Readable | Buffer, options: PutOptions): Promise<StoredObject> {
    assertMediaType(options.contentType);
    const dir = pathUnder(this.root, key);
    const version = randomBytes(12).toString('base64url');
    const tmp = join(dir, `.tmp-${version}`);
    let size: number;
    let checksumSha256: string;
    try {
      if (Buffer.isBuffer(body)) {
        ({ size, checksumSha256 } = meterBuffer(body, options));
        options.signal?.throwIfAborted();
        await this.#withDir(dir, () => writeFile(tmp, body, { flag: 'wx' }));
      } else {
        const meter = new Meter(options);
        const file = await this.#withDir(dir, async () => {
          const handle = await open(tmp, 'wx');
          return createWriteStream('', { fd: handle, flush: false });
        });
        try {
          await meteredCopy(body, meter, file, options.signal);
        } finally {
          if (!file.closed) await new Promise<void>((done) => file.once('close', () => done()));
        }
        size = meter.bytes;
        checksumSha256 = meter.checksumSha256;
      }
      const previous = await readMeta(dir);
      const meta: Meta = {
        v: 1,
        file: `.v-${version}`,
        size,
        contentType: options.contentType,
        checksumSha256,
        etag: etagOf(checksumSha256),
        lastModified: new Date().toISOString(),
      };
      await rename(tmp, join(dir, meta.file));
      const metaTmp = join(dir, `.meta-${version}`);
      await writeFile(metaTmp, JSON.stringify(meta), { flag: 'wx' });
      await rename(metaTmp, join(dir, META));
      if (previous && previous.file !== meta.file)
        await rm(join(dir, previous.file), { force: true });
      return toObject(key, meta);
    } catch (error) {
      await rm(tmp, { force: true }).catch(() => undefined);
      await this.#prune(dir);
      throw translateFsError(error);
    }
  }

  get(key: string, options: { range?: ByteRange } = {}): Promise<ObjectStream | null> {
    return fsCall(() => this.#get(key, options));
  }

  async #get(key: string, options: { range?: ByteRange }): Promise<ObjectStream | null> {
    const dir = pathUnder(this.root, key);
    // The sidecar may name a version replaced (and removed) since it was read: read it again.
    for (let attempt = 0; attempt < 3; attempt++) {
      const meta = await readMeta(dir);
      if (!meta) return null;
      let handle;
      try {
        handle = await open(join(dir, meta.file), 'r');
      } catch (error) {
        if (isMissing(error)) continue;
        throw error;
      }
      const range = satisfiable(options.range, meta.size);
      const body = handle.createReadStream(range ? { start: range.start, end: range.end } : {});
      return { body, object: toObject(key, meta), range };
    }
    return null;
  }

  head(key: string): Promise<StoredObject | null> {
    return fsCall(async () => {
      const meta = await readMeta(pathUnder(this.root, key));
      return meta ? toObject(key, meta) : null;
    });
  }

  delete(key: string): Promise<void> {
    return fsCall(async () => {
      const dir = pathUnder(this.root, key);
      const meta = await readMeta(dir);
      if (!meta) return;
      await rm(join(dir, META), { force: true });
      await rm(join(dir, meta.file), { force: true });
      await this.#prune(dir);
    });
  }

  /**
   * Objects under `prefix`, in key order segment by segment (`a`, `a/b`, `a-c`: a key before the
   * keys under it), from just after `after`. Keys made with UUIDv7 segments list oldest first.
   */
  list(prefix: string, options: { limit?: number; after?: string } = {}): Promise<StoredObject[]> {
    return fsCall(() => this.#list(prefix, options));
  }

  async #list(
    prefix: string,
    options: { limit?: number; after?: string },
  ): Promise<StoredObject[]> {
    if (!isKeyPrefix(prefix)) throw new Error('invalid listing prefix');
    const limit = Math.max(1, Math.min(options.limit ?? 1_000, 1_000));
    const slash = prefix.lastIndexOf('/');
    const baseSegments = slash < 0 ? [] : prefix.slice(0, slash).split('/');
    const partial = prefix.slice(slash + 1);
    const baseDepth = baseSegments.length;
    let bound: readonly string[] | null =
      options.after === undefined ? null : options.after.split('/');
    if (bound) {
      const i = baseSegments.findIndex((s, n) => bound?.[n] !== s);
      if (i >= 0 && i < bound.length) {
        // `after` is outside the prefix: before it (list everything) or past it (nothing).
        if ((bound[i] ?? '') > (baseSegments[i] ?? '')) return [];
        bound = null;
      } else if (i >= 0) bound = null; // `after` is a parent of the prefix: everything follows it.
    }
    const out: StoredObject[] = [];
    const walk = async (
      dir: string,
      segments: readonly string[],
      after: readonly string[] | null,
    ): Promise<void> => {
      let names: string[];
      try {
        names = (await readdir(dir, { withFileTypes: true }))
          .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
          .map((e) => e.name)
          .sort();
      } catch (error) {
        if (isMissing(error)) return;
        throw error;
      }
      const depth = segments.length;
      const limitAt = after && after.length > depth ? after : null;
      for (const name of names) {
        if (out.length >= limit) return;
        if (depth === baseDepth && !name.startsWith(partial)) continue;
        const path = [...segments, name];
        let yieldIt = true;
        let childAfter: readonly string[] | null = null;
        if (limitAt) {
          const at = limitAt[depth] ?? '';
          if (name < at) continue;
          if (name === at) {
            yieldIt = false; // this key is `after` itself, or a parent of it
            childAfter = limitAt.length > path.length ? limitAt : null;
          }
        }
        if (yieldIt) {
          const meta = await readMeta(join(dir, name));
          if (meta) out.push(toObject(path.join('/'), meta));
        }
        await walk(join(dir, name), path, childAfter);
      }
    };
    const start = baseDepth === 0 ? this.root : pathUnder(this.root, baseSegments.join('/'));
    await walk(start, baseSegments, bound);
    return out;
  }

  async signedGetUrl(key: string, options: SignedGetOptions): Promise<string> {
    pathUnder(this.root, key);
    if (options.contentType !== undefined) assertMediaType(options.contentType);
    const params = {
      expires: expiry(options.expiresInSeconds),
      disposition:
        options.contentDisposition === undefined
          ? undefined
          : safeDisposition(options.contentDisposition),
      type: options.contentType,
    };
    const query = new URLSearchParams({ expires: String(params.expires) });
    if (params.disposition !== undefined) query.set('disposition', params.disposition);
    if (params.type !== undefined) query.set('type', params.type);
    query.set('signature', this.#signer.signGet(key, params));
    return `${this.#publicUrl}${LOCAL_OBJECTS_PATH}/${key}?${query.toString()}`;
  }

  async presignPut(key: string, options: PresignPutOptions): Promise<PresignedPut> {
    pathUnder(this.root, key);
    assertMediaType(options.contentType);
    const params = {
      expires: expiry(options.expiresInSeconds),
      type: options.contentType,
      length: options.contentLength,
      sha256: options.checksumSha256,
    };
    const query = new URLSearchParams({
      expires: String(params.expires),
      type: params.type,
      length: String(params.length),
      sha256: params.sha256,
      signature: this.#signer.signPut(key, params),
    });
    return {
      url: `${this.#publicUrl}${LOCAL_OBJECTS_PATH}/${key}?${query.toString()}`,
      method: 'PUT',
      // The checksum is in the signed URL: no custom header, so a browser on another origin
      // needs no CORS preflight allowance beyond `Content-Type` (the route checks the header
      // `x-amz-checksum-sha256` too when a client sends it, as to S3).
      headers: {
        'content-type': options.contentType,
        'content-length': String(options.contentLength),
      },
      expiresAt: new Date(params.expires * 1000),
    };
  }

  async ping(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    await mkdir(this.root, { recursive: true });
    await access(this.root, constants.R_OK | constants.W_OK);
  }

  async close(): Promise<void> {}

  /** Runs `make` in `dir`, made first (again, if an empty-folder cleanup removed it meanwhile). */
  async #withDir<T>(dir: string, make: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      await mkdir(dir, { recursive: true });
      try {
        return await make();
      } catch (error) {
        if (!isMissing(error) || attempt >= 2) throw error;
      }
    }
  }

  /** Removes `dir` and its parents up to the root while they are empty. */
  async #prune(dir: string): Promise<void> {
    let current = dir;
    while (current.startsWith(`${this.root}/`)) {
      try {
        await rmdir(current);
      } catch {
        return;
      }
      current = dirname(current);
    }
  }
}

/** `expires` of a signed URL: seconds since the epoch. */
function expiry(seconds: number): number {
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 604_800)
    throw new Error('expiresInSeconds must be an integer from 1 to 604800');
  return Math.floor(Date.now() / 1000) + seconds;
}

/** The range to serve, inclusive, or null when none was asked or it cannot be served. */
export function satisfiable(
  range: ByteRange | undefined,
  size: number,
): { start: number; end: number } | null {
  if (!range || size === 0) return null;
  const end = Math.min(range.end ?? size - 1, size - 1);
  if (!Number.isInteger(range.start) || range.start < 0 || range.start > end) return null;
  return { start: range.start, end };
}

/** A strong validator from the content: the same bytes keep their ETag. */
export function etagOf(checksumSha256: string): string {
  return Buffer.from(checksumSha256, 'base64').subarray(0, 16).toString('hex');
}

/** Runs a file-system operation; a failing disk becomes `StorageUnavailableError` (503). */
async function fsCall<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw translateFsError(error);
  }
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

async function readMeta(dir: string): Promise<Meta | null> {
  let text: string;
  try {
    text = await readFile(join(dir, META), 'utf8');
  } catch (error) {
    if (isMissing(error)) return null;
    throw error;
  }
  return JSON.parse(text) as Meta;
}

function toObject(key: string, meta: Meta): StoredObject {
  return {
    key,
    size: meta.size,
    contentType: meta.contentType,
    etag: meta.etag,
    checksumSha256: meta.checksumSha256,
    lastModified: new Date(meta.lastModified),
  };
}
