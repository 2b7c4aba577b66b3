import { Type } from 'typebox';
import { defineEvent } from '../../platform/events/index.ts';

/** Who may moderate spots (and so sees every spots event); owners see their own spots' events. */
export const SPOTS_MODERATE = 'spots:moderate';
const visibility = { permission: SPOTS_MODERATE, ownerVisible: true };
const SPOT = '0190a5c4-7b7e-7000-8000-00000000a001';
const USER = '0190a5c4-7b7e-7000-8000-00000000b001';

export const spotCreated = defineEvent({
  type: 'spots.spot.created',
  description: 'A spot was created (`status`: `visible`, or `pending` when it awaits review).',
  payload: Type.Object(
    {
      spotId: Type.String({ format: 'uuid' }),
      ownerId: Type.String({ format: 'uuid' }),
      name: Type.String(),
      category: Type.String(),
      lat: Type.Number(),
      lng: Type.Number(),
      status: Type.String(),
    },
    { additionalProperties: false },
  ),
  example: {
    spotId: SPOT,
    ownerId: USER,
    name: 'Pont des Arts at sunrise',
    category: 'bridge',
    lat: 48.8583,
    lng: 2.3375,
    status: 'visible',
  },
  visibility,
});

export const spotUpdated = defineEvent({
  type: 'spots.spot.updated',
  description:
    'A spot changed: `fields` lists what (`deleted` when removed, `status` when restored).',
  payload: Type.Object(
    {
      spotId: Type.String({ format: 'uuid' }),
      fields: Type.Array(Type.String()),
    },
    { additionalProperties: false },
  ),
  example: { spotId: SPOT, fields: ['name', 'tags'] },
  visibility,
});

export const spotHidden = defineEvent({
  type: 'spots.spot.hidden',
  description:
    'A spot left public reads: hidden by a moderator (`by: moderator`), or by reports past the threshold, pending review (`by: reports`).',
  payload: Type.Object(
    {
      spotId: Type.String({ format: 'uuid' }),
      by: Type.Union([Type.Literal('moderator'), Type.Literal('reports')]),
      reason: Type.String(),
    },
    { additionalProperties: false },
  ),
  example: { spotId: SPOT, by: 'reports', reason: 'Reported by 3 users; pending review.' },
  visibility,
});

export const pictureReady = defineEvent({
  type: 'spots.picture.ready',
  description: 'A spot’s picture finished processing and appears in public reads.',
  payload: Type.Object(
    {
      spotId: Type.String({ format: 'uuid' }),
      pictureId: Type.String({ format: 'uuid' }),
      fileId: Type.String({ format: 'uuid' }),
    },
    { additionalProperties: false },
  ),
  example: {
    spotId: SPOT,
    pictureId: '0190a5c4-7b7e-7000-8000-00000000c001',
    fileId: '0190a5c4-7b7e-7000-8000-00000000d001',
  },
  visibility,
});

export const spotsEvents = [spotCreated, spotUpdated, spotHidden, pictureReady];
