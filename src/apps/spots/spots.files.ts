import { defineFilePurpose } from '../../platform/files/index.ts';

/** A spot's picture: processed into variants (metadata and GPS stripped), readable by anyone. */
export const spotPicture = defineFilePurpose({
  name: 'spots.picture',
  description: 'A picture of a spot (public once attached and processed).',
  kind: 'image',
  maxBytes: 15 * 1024 * 1024,
  contentTypes: ['image/jpeg', 'image/png', 'image/webp'],
  read: 'public',
  image: {
    maxPixels: 40_000_000,
    maxFrames: 1,
    variants: [
      { name: 'w256', width: 256, formats: ['webp', 'jpeg'] },
      { name: 'w1024', width: 1024, formats: ['webp', 'jpeg'] },
    ],
  },
});
