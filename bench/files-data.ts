// Fixtures of the files benchmark: photo-like JPEGs made here with sharp (nothing downloaded).
import sharp from 'sharp';

/**
 * A `width` × `height` JPEG of a gradient under deterministic noise: the noise keeps the encoder
 * and decoder as busy as a real photo's detail does (a flat image would flatter every figure).
 */
export async function photoJpeg(width: number, height: number, quality = 90): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  let seed = 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      const n = (seed >> 16) & 63;
      const i = (y * width + x) * 3;
      raw[i] = ((x * 255) / width + n) & 255;
      raw[i + 1] = ((y * 255) / height + n) & 255;
      raw[i + 2] = (((x + y) * 128) / width + n) & 255;
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } })
    .jpeg({ quality })
    .toBuffer();
}
