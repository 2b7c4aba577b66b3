import { defineErrorCodes } from '../../platform/http/index.ts';

/** The spots app's error codes (stable once shipped). */
export const SpotsCodes = defineErrorCodes('spots', {
  SPOT_NOT_FOUND: {
    kind: 'NotFound',
    title: 'Spot not found',
    description: 'No such spot, or it is hidden, pending review or deleted and not the caller’s.',
  },
  PICTURE_NOT_FOUND: {
    kind: 'NotFound',
    title: 'Picture not found',
    description: 'No such picture on this spot.',
  },
  SPOT_NOT_OWNER: {
    kind: 'Forbidden',
    title: 'Not your spot',
    description: 'Only the spot’s owner (or a holder of `spots:moderate`) may change it.',
  },
  INVALID_LOCATION: {
    kind: 'Invalid',
    title: 'Invalid location',
    description:
      '`near` or `bbox` is not made of finite numbers with latitude in −90..90 and longitude in −180..180, or the box is inverted (minLat > maxLat).',
  },
  RADIUS_TOO_LARGE: {
    kind: 'Invalid',
    title: 'Radius too large',
    description: '`radiusM` is larger than `SPOTS_MAX_RADIUS_M`.',
  },
  INVALID_SPOT_QUERY: {
    kind: 'Invalid',
    title: 'Invalid spot query',
    description:
      'The filters do not go together: `sort=distance` or `radiusM` without `near`, `near` with `bbox`, or a limit above the cap.',
  },
  PICTURE_FILE_INVALID: {
    kind: 'Invalid',
    title: 'Picture file not usable',
    description:
      '`fileId` is not one of the caller’s uploads of purpose `spots.picture` (another user’s file, another purpose, a deleted or failed file), or is already a picture.',
  },
  TOO_MANY_PICTURES: {
    kind: 'Invalid',
    title: 'Too many pictures',
    description: 'The spot already has `SPOTS_MAX_PICTURES` pictures.',
  },
  COVER_NOT_READY: {
    kind: 'Invalid',
    title: 'Cover picture not usable',
    description: '`coverPictureId` is not a ready picture of this spot.',
  },
  CANNOT_REPORT_OWN_SPOT: {
    kind: 'Invalid',
    title: 'Cannot report your own spot',
    description: 'A user reports other users’ spots; delete or edit your own.',
  },
});
