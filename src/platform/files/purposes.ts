import type { AnyModule, FilePurpose } from '../modules/index.ts';
import type { Config } from '../config/index.ts';

/** Image types the processing job decodes (by content). */
export const IMAGE_TYPES: ReadonlySet<string> = new Set([
  'image/jpeg',
  'image/png',
  'image/webp',
  'image/avif',
  'image/gif',
]);

/**
 * Types that can carry script or markup a browser may run: never accepted for any purpose (an
 * image purpose would otherwise serve them inline; `file-type` reports SVG as `application/xml`).
 */
export const SCRIPTABLE_TYPES: ReadonlySet<string> = new Set([
  'image/svg+xml',
  'text/html',
  'application/xhtml+xml',
  'application/xml',
  'text/xml',
  'application/javascript',
  'text/javascript',
  'application/x-shockwave-flash',
]);

/**
 * Text types a document purpose may list. Text has no magic number: when the bytes match no
 * known format, a head that is UTF-8 without NUL and not markup is decided as one of these (see
 * `sniffText`); no other text type could ever be decided, so none other is declared.
 */
export const TEXT_TYPES: ReadonlySet<string> = new Set([
  'text/csv',
  'application/x-ndjson',
  'text/plain',
]);

const NAME = /^[a-z][a-z0-9-]*\.[a-z][a-z0-9-]*$/;
const VARIANT = /^[a-z0-9][a-z0-9-]{0,31}$/;

/** Declares a file purpose (its shape checked once, at import). */
export function defineFilePurpose(purpose: FilePurpose): FilePurpose {
  const fail = (message: string): never => {
    throw new Error(`file purpose ${purpose.name}: ${message}`);
  };
  if (!NAME.test(purpose.name)) fail('the name must be `module.what` (lowercase, one dot)');
  if (!Number.isSafeInteger(purpose.maxBytes) || purpose.maxBytes < 1)
    fail('maxBytes must be a positive integer');
  if (purpose.contentTypes.length === 0) fail('list at least one content type');
  for (const type of purpose.contentTypes) {
    if (SCRIPTABLE_TYPES.has(type)) fail(`${type} is scriptable: never accepted`);
    if (purpose.kind === 'image' && !IMAGE_TYPES.has(type))
      fail(`${type} is not an image type the platform processes`);
    if (type.startsWith('text/') && !TEXT_TYPES.has(type))
      fail(`${type} is never decided from the content (text types: ${[...TEXT_TYPES].join(', ')})`);
  }
  if (purpose.kind === 'image') {
    const image = purpose.image ?? fail('an image purpose declares `image` (limits, variants)');
    if (!Number.isSafeInteger(image.maxPixels) || image.maxPixels < 1)
      fail('image.maxPixels must be a positive integer');
    if (!Number.isSafeInteger(image.maxFrames) || image.maxFrames < 1)
      fail('image.maxFrames must be a positive integer');
    const names = new Set<string>();
    for (const v of image.variants) {
      if (!VARIANT.test(v.name)) fail(`variant ${v.name}: the name must be like \`w256\``);
      if (v.name === 'original') fail('`original` is the stripped original, not a variant');
      if (names.has(v.name)) fail(`variant ${v.name} is listed twice`);
      names.add(v.name);
      if (!Number.isInteger(v.width) || v.width < 1 || v.width > 16_384)
        fail(`variant ${v.name}: width must be 1..16384`);
      if (v.formats.length === 0) fail(`variant ${v.name}: list at least one format`);
    }
  } else if (purpose.image) fail('only image purposes declare `image`');
  return Object.freeze(purpose);
}

/** The purposes of the enabled modules, by name. */
export type PurposeRegistry = ReadonlyMap<string, FilePurpose>;

/** Every module's purposes; a name declared twice throws, naming both modules. */
export function filePurposeRegistry(modules: readonly AnyModule[]): PurposeRegistry {
  const byName = new Map<string, FilePurpose>();
  const owner = new Map<string, string>();
  for (const m of modules) {
    for (const p of m.filePurposes ?? []) {
      const first = owner.get(p.name);
      if (first !== undefined)
        throw new Error(`file purpose ${p.name} is declared by ${first} and ${m.name}`);
      owner.set(p.name, m.name);
      byName.set(p.name, p);
    }
  }
  return byName;
}

const registries = new WeakMap<Config, PurposeRegistry>();

/**
 * Records the purposes of the modules enabled with this configuration (`enabledModules` calls
 * it, so every process role and test sees the same), refusing duplicates there, at start.
 */
export function bindFilePurposes(config: Config, modules: readonly AnyModule[]): void {
  registries.set(config, filePurposeRegistry(modules));
}

/** The purposes bound to this configuration (only `fallback`'s when none were bound). */
export function filePurposesOf(config: Config, fallback: readonly FilePurpose[]): PurposeRegistry {
  return registries.get(config) ?? new Map(fallback.map((p) => [p.name, p]));
}

/**
 * The files module's own purpose: images its owner uploads and reads (until apps declare theirs,
 * it makes the routes usable, and it is the default purpose, `FILES_DEFAULT_PURPOSE`).
 */
export const filesImagePurpose = defineFilePurpose({
  name: 'files.image',
  description: 'An image its owner uploads and reads: two widths in WebP and AVIF, JPEG fallback.',
  kind: 'image',
  maxBytes: 20 * 1024 * 1024,
  contentTypes: ['image/jpeg', 'image/png', 'image/webp', 'image/avif', 'image/gif'],
  read: 'owner',
  image: {
    maxPixels: 40_000_000,
    maxFrames: 100,
    variants: [
      { name: 'w256', width: 256, formats: ['webp', 'avif', 'jpeg'] },
      { name: 'w1024', width: 1024, formats: ['webp', 'avif', 'jpeg'] },
    ],
  },
});
