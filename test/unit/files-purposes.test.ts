import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  bindFilePurposes,
  defineFilePurpose,
  filePurposeRegistry,
  filesImagePurpose,
  filesSettings,
} from '../../src/platform/files/index.ts';
import { defineModule, type FilePurpose } from '../../src/platform/modules/index.ts';
import { enabledModules } from '../../src/platform/runtime/index.ts';
import { ConfigError } from '../../src/platform/config/index.ts';
import { buildTestApp, testConfig } from '../helpers/app.ts';

const picture: FilePurpose = {
  name: 'spots.picture',
  description: 'A picture of a spot.',
  kind: 'image',
  maxBytes: 1_000,
  contentTypes: ['image/jpeg'],
  read: 'public',
  image: {
    maxPixels: 100,
    maxFrames: 1,
    variants: [{ name: 'w256', width: 256, formats: ['webp'] }],
  },
};

describe('files: purposes', () => {
  test('defineFilePurpose refuses bad names, scriptable or undecodable types and bad variants', () => {
    assert.equal(defineFilePurpose(picture).name, 'spots.picture');
    const bad: [Partial<FilePurpose>, RegExp][] = [
      [{ name: 'Spots.Picture' }, /module\.what/],
      [{ name: 'picture' }, /module\.what/],
      [{ maxBytes: 0 }, /maxBytes/],
      [{ contentTypes: ['image/svg+xml'] }, /scriptable/],
      [{ contentTypes: ['text/html'] }, /scriptable/],
      [{ contentTypes: ['application/pdf'] }, /not an image type/],
      [{ contentTypes: [] }, /at least one/],
      [{ image: undefined }, /declares `image`/],
      [{ image: { ...picture.image!, maxPixels: 0 } }, /maxPixels/],
      [
        {
          image: {
            ...picture.image!,
            variants: [{ name: 'original', width: 10, formats: ['webp'] }],
          },
        },
        /original/,
      ],
      [
        {
          image: {
            ...picture.image!,
            variants: [
              { name: 'w1', width: 10, formats: ['webp'] },
              { name: 'w1', width: 20, formats: ['webp'] },
            ],
          },
        },
        /twice/,
      ],
      [
        { image: { ...picture.image!, variants: [{ name: 'w1', width: 0, formats: ['webp'] }] } },
        /width/,
      ],
      [{ kind: 'document', contentTypes: ['application/pdf'] }, /only image purposes/],
    ];
    for (const [change, message] of bad)
      assert.throws(
        () => defineFilePurpose({ ...picture, ...change }),
        message,
        JSON.stringify(change),
      );
    // SVG is never accepted, documents included.
    assert.throws(
      () =>
        defineFilePurpose({
          ...picture,
          kind: 'document',
          image: undefined,
          contentTypes: ['image/svg+xml'],
        }),
      /scriptable/,
    );
  });

  test('two modules declaring one purpose refuse to start, naming both', () => {
    const a = defineModule({ name: 'spots', description: 'a', filePurposes: [picture] });
    const b = defineModule({ name: 'shop', description: 'b', filePurposes: [picture] });
    assert.throws(
      () => filePurposeRegistry([a, b]),
      /spots\.picture is declared by spots and shop/,
    );
    const config = testConfig();
    assert.throws(() => enabledModules(config, [a, b]), /declared by spots and shop/);
    assert.throws(
      () =>
        bindFilePurposes(config, [
          a,
          defineModule({ name: 'x', description: 'x', filePurposes: [filesImagePurpose] }),
          b,
        ]),
      /declared by/,
    );
  });

  test('the enabled modules’ purposes: the files module’s own and the apps’', () => {
    const a = defineModule({ name: 'spots', description: 'a', filePurposes: [picture] });
    const registry = filePurposeRegistry(enabledModules(testConfig(), [a]));
    assert.deepEqual([...registry.keys()].sort(), ['files.image', 'spots.picture']);
  });

  test('settings: defaults, one processing slot per core by default, durations parsed', () => {
    const s = filesSettings({});
    assert.equal(s.userQuotaBytes, 1_073_741_824);
    assert.equal(s.uploadTimeoutMs, 300_000);
    assert.ok(s.processingConcurrency >= 1);
    assert.equal(s.uploadUrlTtlS, 900);
    assert.equal(s.downloadUrlTtlS, 300);
    assert.equal(s.purgeAfterS, 86_400);
    assert.equal(s.defaultPurpose, 'files.image');
    assert.equal(filesSettings({ FILES_PROCESSING_CONCURRENCY: 3 }).processingConcurrency, 3);
    assert.throws(() => testConfig({ FILES_UPLOAD_URL_TTL: '8d' }), /FILES_UPLOAD_URL_TTL/);
    assert.throws(() => testConfig({ FILES_UPLOAD_TIMEOUT: '5' }), /FILES_UPLOAD_TIMEOUT/);
  });

  test('a FILES_DEFAULT_PURPOSE no module declares refuses to start', async () => {
    await assert.rejects(
      buildTestApp({ FILES_DEFAULT_PURPOSE: 'nope.nothing' }),
      (e: unknown) =>
        e instanceof ConfigError && e.issues.some((i) => i.key === 'FILES_DEFAULT_PURPOSE'),
    );
  });
});
