// Image processing (issue 15, item 3): fixtures are made here with sharp, nothing is downloaded.
import { decode as decodeBlurhash, isBlurhashValid } from 'blurhash';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import type { Metadata } from 'sharp';
import {
  DEFAULT_IMAGE_LIMITS,
  DEFAULT_IMAGE_VARIANTS,
  ImageProcessingError,
  PROBE_HEAD_BYTES,
  probeImage,
  processImage,
} from '../../src/platform/files/images.ts';
import type { ImageFailure, ProcessedImage } from '../../src/platform/files/images.ts';

const limits = DEFAULT_IMAGE_LIMITS;
const variants = DEFAULT_IMAGE_VARIANTS;

/** Deterministic noise over a gradient: compresses like a photo, not like a flat colour. */
function noise(width: number, height: number, channels: 3 | 4): Buffer {
  const raw = Buffer.alloc(width * height * channels);
  let seed = 7;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      const n = (seed >> 16) & 31;
      const i = (y * width + x) * channels;
      raw[i] = ((x * 255) / width + n) & 255;
      raw[i + 1] = ((y * 255) / height + n) & 255;
      raw[i + 2] = (n * 4) & 255;
      if (channels === 4) raw[i + 3] = x < width / 2 ? 255 : 64;
    }
  }
  return raw;
}

const image = (width: number, height: number, channels: 3 | 4 = 3) =>
  sharp(noise(width, height, channels), { raw: { width, height, channels } });

/** A PNG chunk with its CRC (hand-made: sharp refuses to write a lying header, rightly). */
function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body) >>> 0);
  return Buffer.concat([length, body, crc]);
}

/** A 50,000 × 50,000 RGB PNG of a few KB: a header claiming 7.5 GB of pixels and some rows. */
function pngBomb(): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(50_000, 0);
  ihdr.writeUInt32BE(50_000, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // truecolour
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(Buffer.alloc((50_000 * 3 + 1) * 16))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A JPEG straight from a phone: rotated by EXIF, GPS position, XMP, a Display P3 profile. */
async function phoneJpeg(): Promise<Buffer> {
  return image(600, 400)
    .jpeg({ quality: 90 })
    .withMetadata({ orientation: 6 })
    .withExif({
      IFD0: { Make: 'Groundwork', Model: 'Test Phone' },
      IFD3: {
        GPSLatitudeRef: 'N',
        GPSLatitude: '48/1 51/1 24/1',
        GPSLongitudeRef: 'E',
        GPSLongitude: '2/1 21/1 3/1',
      },
    })
    .withIccProfile('p3')
    .withXmp(
      '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>Somebody</dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>',
    )
    .toBuffer();
}

/** An animated GIF of `frames` frames, `width` × `height` each. */
function animatedGif(frames: number, width = 64, height = 48): Promise<Buffer> {
  return sharp(noise(width, height * frames, 3), {
    raw: { width, height: height * frames, channels: 3, pageHeight: height },
  })
    .gif({ loop: 0, delay: Array.from({ length: frames }, () => 100) })
    .toBuffer();
}

async function refusal(work: Promise<unknown>): Promise<ImageFailure> {
  const error: unknown = await work.then(
    () => assert.fail('expected a refusal'),
    (e: unknown) => e,
  );
  assert.ok(error instanceof ImageProcessingError, `not an ImageProcessingError: ${String(error)}`);
  return error.code;
}

async function assertClean(data: Buffer): Promise<Metadata> {
  const m = await sharp(data).metadata();
  assert.equal(m.exif, undefined, 'EXIF left');
  assert.equal(m.xmp, undefined, 'XMP left');
  assert.equal(m.iptc, undefined, 'IPTC left');
  assert.equal(m.icc, undefined, 'ICC profile left');
  assert.equal(m.hasProfile, false);
  assert.ok((m.orientation ?? 1) === 1, 'orientation tag left');
  return m;
}

function variant(result: ProcessedImage, name: string, format: string) {
  const v = result.variants.find((x) => x.name === name && x.format === format);
  assert.ok(v, `variant ${name} ${format} missing`);
  return v;
}

describe('processImage', () => {
  test('a phone JPEG (GPS EXIF, orientation 6, XMP, P3 profile): every output rotated and stripped', async () => {
    const input = await phoneJpeg();
    const before = await sharp(input).metadata();
    assert.equal(before.orientation, 6);
    assert.ok(
      before.exif?.includes(Buffer.from([0x25, 0x88])),
      'fixture carries a GPS IFD pointer',
    );
    assert.ok(before.icc !== undefined && before.xmp !== undefined);

    const result = await processImage(input, { variants, limits });
    // Orientation 6 is a quarter turn: 600 × 400 stored, 400 × 600 shown.
    assert.deepEqual([result.width, result.height], [400, 600]);
    const original = await assertClean(result.original.data);
    assert.equal(result.original.contentType, 'image/jpeg');
    assert.deepEqual([original.format, original.width, original.height], ['jpeg', 400, 600]);
    assert.equal(result.variants.length, 6);
    for (const v of result.variants) {
      const m = await assertClean(v.data);
      assert.deepEqual([m.width, m.height], [v.width, v.height]);
    }
    assert.deepEqual(
      [variant(result, 'w256', 'webp').width, variant(result, 'w256', 'webp').height],
      [256, 384],
    );
    // Never upscaled: the 1024 variant is the original's 400 px.
    assert.deepEqual(
      [variant(result, 'w1024', 'avif').width, variant(result, 'w1024', 'avif').height],
      [400, 600],
    );
  });

  test('the P3 profile is applied (converted to sRGB), not merely dropped', async () => {
    const red = await sharp({
      create: { width: 8, height: 8, channels: 3, background: { r: 200, g: 30, b: 30 } },
    })
      .withIccProfile('p3')
      .png()
      .toBuffer();
    const stored = await sharp(red, { ignoreIcc: true }).raw().toBuffer();
    assert.notDeepEqual([...stored.subarray(0, 3)], [200, 30, 30], 'fixture stores P3 values');
    const result = await processImage(red, { variants, limits });
    const px = await sharp(result.original.data).raw().toBuffer();
    for (const [i, want] of [200, 30, 30].entries()) {
      assert.ok(Math.abs((px[i] ?? -99) - want) <= 2, `channel ${String(i)}: ${String(px[i])}`);
    }
  });

  test('variants: every declared name × format with its content type, the aspect ratio kept', async () => {
    const input = await image(2000, 1000).jpeg().toBuffer();
    const result = await processImage(input, {
      limits,
      variants: [
        { name: 'thumb', width: 128, formats: ['png', 'jpeg'] },
        { name: 'w1024', width: 1024, formats: ['webp', 'avif'] },
      ],
    });
    assert.deepEqual(
      result.variants.map((v) => [v.name, v.format, v.width, v.height, v.contentType]),
      [
        ['thumb', 'png', 128, 64, 'image/png'],
        ['thumb', 'jpeg', 128, 64, 'image/jpeg'],
        ['w1024', 'webp', 1024, 512, 'image/webp'],
        ['w1024', 'avif', 1024, 512, 'image/avif'],
      ],
    );
    for (const v of result.variants) {
      const format = (await sharp(v.data).metadata()).format;
      assert.equal(format === 'heif' ? 'avif' : format, v.format);
    }
  });

  test('no upscaling: a 100 × 80 image gives 100 × 80 variants', async () => {
    const input = await image(100, 80).png().toBuffer();
    const result = await processImage(input, { variants, limits });
    for (const v of result.variants) assert.deepEqual([v.width, v.height], [100, 80]);
  });

  test('PNG with transparency: the original stays PNG with alpha; the JPEG fallback is flattened', async () => {
    const input = await image(300, 200, 4).png().toBuffer();
    const result = await processImage(input, { variants, limits });
    assert.equal(result.original.contentType, 'image/png');
    const original = await assertClean(result.original.data);
    assert.equal(original.hasAlpha, true);
    assert.equal((await sharp(variant(result, 'w256', 'webp').data).metadata()).hasAlpha, true);
    const jpeg = await sharp(variant(result, 'w256', 'jpeg').data)
      .raw()
      .toBuffer({
        resolveWithObject: true,
      });
    assert.equal(jpeg.info.channels, 3);
  });

  test('a 16-bit PNG and a CMYK JPEG come out as 8-bit sRGB', async () => {
    const flat = () =>
      sharp({
        create: { width: 300, height: 200, channels: 3, background: { r: 200, g: 30, b: 30 } },
      });
    const png16 = await flat().toColourspace('rgb16').png().toBuffer();
    const cmyk = await flat().toColourspace('cmyk').jpeg().toBuffer();
    assert.equal((await sharp(png16).metadata()).depth, 'ushort');
    assert.equal((await sharp(cmyk).metadata()).space, 'cmyk');
    for (const input of [png16, cmyk]) {
      const result = await processImage(input, {
        limits,
        variants: [{ name: 'w100', width: 100, formats: ['jpeg'] }],
      });
      for (const data of [result.original.data, result.variants[0]?.data ?? Buffer.alloc(0)]) {
        const m = await sharp(data).metadata();
        assert.deepEqual([m.space, m.depth, m.channels], ['srgb', 'uchar', 3]);
      }
      assert.deepEqual([result.variants[0]?.width, result.variants[0]?.height], [100, 67]);
    }
  });

  test('WebP in, WebP original out, clean', async () => {
    const input = await image(320, 240)
      .webp({ quality: 90 })
      .withExif({ IFD3: { GPSLatitudeRef: 'S', GPSLatitude: '33/1 52/1 0/1' } })
      .toBuffer();
    assert.ok((await sharp(input).metadata()).exif !== undefined);
    const result = await processImage(input, { variants, limits });
    assert.equal(result.original.contentType, 'image/webp');
    assert.equal((await assertClean(result.original.data)).format, 'webp');
  });

  test('AVIF in, AVIF original out', async () => {
    const input = await image(200, 150).avif({ quality: 60 }).toBuffer();
    assert.equal((await probeImage(input, limits)).format, 'avif');
    const result = await processImage(input, { variants, limits });
    assert.equal(result.original.contentType, 'image/avif');
    assert.deepEqual([result.width, result.height], [200, 150]);
  });

  test('animated GIF: within the frame cap the original and WebP variants stay animated', async () => {
    const input = await animatedGif(5);
    const result = await processImage(input, { variants, limits });
    assert.deepEqual([result.width, result.height], [64, 48]);
    assert.equal(result.original.contentType, 'image/gif');
    const original = await sharp(result.original.data).metadata();
    assert.equal(original.pages, 5);
    const webp = variant(result, 'w256', 'webp');
    assert.deepEqual([webp.width, webp.height], [64, 48]);
    assert.equal((await sharp(webp.data).metadata()).pages, 5);
    const avif = variant(result, 'w256', 'avif');
    assert.deepEqual([avif.width, avif.height], [64, 48]);
    assert.ok(isBlurhashValid(result.blurhash).result);
  });

  test('animated GIF over the frame cap: TOO_LARGE; frames × pixels over the pixel cap: TOO_MANY_PIXELS', async () => {
    const input = await animatedGif(5);
    assert.equal(
      await refusal(processImage(input, { variants, limits: { ...limits, maxFrames: 4 } })),
      'TOO_LARGE',
    );
    assert.equal(await refusal(probeImage(input, { ...limits, maxFrames: 4 })), 'TOO_LARGE');
    // 64 × 48 × 5 = 15,360 pixels: one frame passes 10,000, the five do not.
    assert.equal(
      await refusal(processImage(input, { variants, limits: { ...limits, maxPixels: 10_000 } })),
      'TOO_MANY_PIXELS',
    );
  });

  test('a 50,000 × 50,000 PNG bomb of a few KB is refused before decoding, by probe and by process', async () => {
    const bomb = pngBomb();
    assert.ok(bomb.length < 10_000, `${String(bomb.length)} bytes`);
    const rss = process.memoryUsage().rss;
    const started = performance.now();
    assert.equal(await refusal(probeImage(bomb.subarray(0, 4096), limits)), 'TOO_MANY_PIXELS');
    assert.equal(await refusal(processImage(bomb, { variants, limits })), 'TOO_MANY_PIXELS');
    const elapsed = performance.now() - started;
    // Decoding would take minutes and 7.5 GB; a header read is milliseconds (generous bounds for a busy CI).
    assert.ok(elapsed < 2_000, `${elapsed.toFixed(0)} ms`);
    assert.ok(process.memoryUsage().rss - rss < 100 * 1024 * 1024, 'memory grew');
  });

  test('a truncated JPEG is CORRUPT (its header still probes)', async () => {
    const whole = await image(800, 600).jpeg({ quality: 90 }).toBuffer();
    const truncated = whole.subarray(0, Math.floor(whole.length * 0.6));
    assert.equal((await probeImage(truncated, limits)).width, 800);
    assert.equal(await refusal(processImage(truncated, { variants, limits })), 'CORRUPT');
  });

  test('failOn error, not warning: a JPEG with stray bytes before a marker (libjpeg warns) still processes', async () => {
    const jpeg = await image(64, 64).jpeg().toBuffer();
    const at = jpeg.indexOf(Buffer.from([0xff, 0xc4])); // the first Huffman table
    const quirky = Buffer.concat([
      jpeg.subarray(0, at),
      Buffer.from([1, 2, 3, 4]),
      jpeg.subarray(at),
    ]);
    await assert.rejects(sharp(quirky, { failOn: 'warning' }).raw().toBuffer(), /extraneous bytes/);
    const result = await processImage(quirky, { variants, limits });
    assert.deepEqual([result.width, result.height], [64, 64]);
  });

  test('random bytes, HTML labelled as PNG, and an SVG with a script are UNSUPPORTED_TYPE, never rendered', async () => {
    const random = Buffer.alloc(4096);
    for (let i = 0, s = 1; i < random.length; i++) {
      s = (s * 1103515245 + 12345) & 0x7fffffff;
      random[i] = s >> 16;
    }
    const svg = Buffer.from(
      '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script><rect width="10" height="10"/></svg>',
    );
    const html = Buffer.from('<!doctype html><html><body><script>alert(1)</script></body></html>');
    for (const bytes of [random, svg, html, Buffer.alloc(0)]) {
      assert.equal(await refusal(probeImage(bytes, limits)), 'UNSUPPORTED_TYPE');
      assert.equal(await refusal(processImage(bytes, { variants, limits })), 'UNSUPPORTED_TYPE');
    }
  });

  test('a PNG whose pixel data is garbage is CORRUPT', async () => {
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(100, 0);
    ihdr.writeUInt32BE(100, 4);
    ihdr[8] = 8;
    ihdr[9] = 2;
    const fake = Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      pngChunk('IHDR', ihdr),
      pngChunk('IDAT', Buffer.alloc(200, 0xa5)),
      pngChunk('IEND', Buffer.alloc(0)),
    ]);
    assert.equal((await probeImage(fake, limits)).width, 100);
    assert.equal(await refusal(processImage(fake, { variants, limits })), 'CORRUPT');
  });

  test('the blurhash decodes to the requested size', async () => {
    const result = await processImage(await image(640, 480).jpeg().toBuffer(), {
      variants,
      limits,
    });
    assert.ok(isBlurhashValid(result.blurhash).result);
    assert.equal(decodeBlurhash(result.blurhash, 32, 24).length, 32 * 24 * 4);
  });

  test('an aborted signal stops processing with its reason', async () => {
    const input = await image(2000, 1500).jpeg().toBuffer();
    const before = new AbortController();
    before.abort(new Error('stopped before'));
    await assert.rejects(
      processImage(input, { variants, limits, signal: before.signal }),
      /stopped before/,
    );

    const during = new AbortController();
    const work = processImage(input, { variants, limits, signal: during.signal });
    during.abort(new Error('stopped during'));
    await assert.rejects(work, /stopped during/);
  });
});

describe('probeImage', () => {
  test('reads dimensions from the first bytes of JPEG, PNG, WebP and GIF without the rest', async () => {
    const big = image(3000, 2000);
    const cases = [
      ['jpeg', await big.clone().jpeg({ quality: 95 }).toBuffer()],
      ['png', await big.clone().png().toBuffer()],
      ['webp', await big.clone().webp().toBuffer()],
      // VP8X (alpha) and VP8L (lossless): the other two first chunks a WebP can start with.
      ['webp', await image(3000, 2000, 4).webp().toBuffer()],
      ['webp', await big.clone().webp({ lossless: true, effort: 0 }).toBuffer()],
      ['gif', await animatedGif(3, 300, 200)],
    ] as const;
    for (const [format, bytes] of cases) {
      const head = bytes.subarray(0, 64 * 1024);
      assert.ok(head.length < bytes.length, `${format} fixture larger than its head`);
      const probe = await probeImage(head, limits);
      assert.equal(probe.format, format);
      if (format === 'gif') assert.deepEqual([probe.width, probe.height], [300, 200]);
      else assert.deepEqual([probe.width, probe.height], [3000, 2000]);
    }
  });

  test('dimensions as displayed: EXIF orientation 6 swaps them', async () => {
    const probe = await probeImage((await phoneJpeg()).subarray(0, PROBE_HEAD_BYTES), limits);
    assert.deepEqual(probe, { format: 'jpeg', width: 400, height: 600, pages: 1 });
  });
});
