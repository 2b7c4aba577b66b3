import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { etagMatches, strongEtag } from '../../platform/cache/index.ts';
import { currentUser } from '../../platform/identity/index.ts';
import type { ModuleApp } from '../../platform/modules/index.ts';
import { SPOTS_MODERATE } from './spots.events.ts';
import {
  AddPictureBody,
  CreateSpotBody,
  HideBody,
  PageQuery,
  PicturePage,
  PictureParams,
  PictureResponse,
  QueuePage,
  ReportBody,
  ReportResponse,
  SpotDetail,
  SpotListQuery,
  SpotPage,
  SpotParams,
  UpdateSpotBody,
} from './spots.schemas.ts';
import type { SpotsService, Viewer } from './spots.service.ts';

export interface SpotsLimits {
  createPerHour: number;
  reportsPerHour: number;
}

const tags = ['spots'];
const bearer = [{ bearerAuth: [] }];
// A plain schema, not TypeBox's: the reply then takes no body (`send()`), and a 304 carries none.
const NotModified = {
  description: 'Not modified: the `If-None-Match` ETag matches.',
  type: 'null',
};

function viewer(request: FastifyRequest): Viewer {
  return { userId: request.userId ?? null, amr: request.amr ?? [], requestId: request.id };
}

function signedIn(request: FastifyRequest): Viewer & { userId: string } {
  const user = currentUser(request);
  return { userId: user.userId, amr: user.amr, requestId: request.id };
}

/** HTTP only: schemas in, a service call, schemas out. Mounted under `/api/v1/spots`. */
export function registerSpotsRoutes(
  app: ModuleApp,
  spots: SpotsService,
  limits: SpotsLimits,
): Promise<void> {
  app.post(
    '',
    {
      config: {
        auth: 'required',
        idempotency: true,
        rateLimit: [
          { name: 'spots-create', limit: limits.createPerHour, windowSeconds: 3600, by: 'user' },
        ],
      },
      schema: {
        tags,
        summary: 'Create a spot',
        security: bearer,
        body: CreateSpotBody,
        response: { 201: SpotDetail },
      },
    },
    async (request, reply) =>
      reply.code(201).send(await spots.create(request.body, signedIn(request))),
  );

  app.get(
    '',
    {
      schema: {
        tags,
        summary: 'Find spots: nearby, in a map viewport, by text, by category, tag or owner',
        querystring: SpotListQuery,
        response: { 200: SpotPage },
        errorCodes: [
          'INVALID_LOCATION',
          'RADIUS_TOO_LARGE',
          'INVALID_SPOT_QUERY',
          'INVALID_CURSOR',
        ],
      },
    },
    (request) => spots.list(request.query, viewer(request)),
  );

  app.get(
    '/favourites',
    {
      config: { auth: 'required' },
      schema: {
        tags,
        summary: 'The caller’s favourite spots, most recent first',
        security: bearer,
        querystring: PageQuery,
        response: { 200: SpotPage },
        errorCodes: ['INVALID_CURSOR'],
      },
    },
    (request) => spots.favourites(request.query, signedIn(request)),
  );

  app.get(
    '/moderation/queue',
    {
      config: { permission: SPOTS_MODERATE },
      schema: {
        tags,
        summary: 'Spots waiting for review (new accounts’, reported past the threshold)',
        security: bearer,
        querystring: PageQuery,
        response: { 200: QueuePage },
        errorCodes: ['INVALID_CURSOR'],
      },
    },
    (request) => spots.queue(request.query),
  );

  app.get(
    '/:id',
    {
      schema: {
        tags,
        summary: 'A spot with its pictures (ETag; 304 on a match)',
        params: SpotParams,
        response: { 200: SpotDetail, 304: NotModified },
        errorCodes: ['SPOT_NOT_FOUND'],
      },
    },
    async (request, reply) => {
      const { body, public: isPublic } = await spots.get(request.params.id, viewer(request));
      // Public: any cache may keep it but revalidates each time (a hidden spot must vanish);
      // the owner's or a moderator's view (hidden, pending) is never stored.
      const etag = strongEtag(JSON.stringify(body));
      reply.header('cache-control', isPublic ? 'public, no-cache' : 'private, no-store');
      reply.header('etag', etag);
      const inm = request.headers['if-none-match'];
      if (isPublic && typeof inm === 'string' && etagMatches(inm, etag))
        return reply.code(304).send();
      return body;
    },
  );

  app.patch(
    '/:id',
    {
      config: { auth: 'required' },
      schema: {
        tags,
        summary: 'Change a spot (its owner, or a moderator); `coverPictureId` picks the cover',
        security: bearer,
        params: SpotParams,
        body: UpdateSpotBody,
        response: { 200: SpotDetail },
        errorCodes: ['SPOT_NOT_FOUND', 'SPOT_NOT_OWNER', 'COVER_NOT_READY'],
      },
    },
    async (request) => spots.update(request.params.id, request.body, signedIn(request)),
  );

  app.delete(
    '/:id',
    {
      config: { auth: 'required' },
      schema: {
        tags,
        summary: 'Delete a spot (soft; its owner, or a moderator)',
        security: bearer,
        params: SpotParams,
        response: { 204: Type.Null() },
        errorCodes: ['SPOT_NOT_FOUND', 'SPOT_NOT_OWNER'],
      },
    },
    async (request, reply) => {
      await spots.remove(request.params.id, signedIn(request));
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/:id/pictures',
    {
      schema: {
        tags,
        summary: 'A spot’s pictures (ready ones; the owner also sees those processing or failed)',
        params: SpotParams,
        response: { 200: PicturePage },
        errorCodes: ['SPOT_NOT_FOUND'],
      },
    },
    (request) => spots.pictures(request.params.id, viewer(request)),
  );

  app.post(
    '/:id/pictures',
    {
      config: { auth: 'required', idempotency: true },
      schema: {
        tags,
        summary: 'Add an uploaded picture (purpose `spots.picture`) to the caller’s spot',
        security: bearer,
        params: SpotParams,
        body: AddPictureBody,
        response: { 201: PictureResponse },
        errorCodes: [
          'SPOT_NOT_FOUND',
          'SPOT_NOT_OWNER',
          'PICTURE_FILE_INVALID',
          'TOO_MANY_PICTURES',
        ],
      },
    },
    async (request, reply) =>
      reply
        .code(201)
        .send(await spots.addPicture(request.params.id, request.body, signedIn(request))),
  );

  app.delete(
    '/:id/pictures/:pictureId',
    {
      config: { auth: 'required' },
      schema: {
        tags,
        summary: 'Remove a picture from a spot (its owner, or a moderator)',
        security: bearer,
        params: PictureParams,
        response: { 204: Type.Null() },
        errorCodes: ['SPOT_NOT_FOUND', 'SPOT_NOT_OWNER', 'PICTURE_NOT_FOUND'],
      },
    },
    async (request, reply) => {
      await spots.removePicture(request.params.id, request.params.pictureId, signedIn(request));
      return reply.code(204).send(null);
    },
  );

  for (const [method, on] of [
    ['PUT', true],
    ['DELETE', false],
  ] as const) {
    app.route({
      method,
      url: '/:id/favourite',
      config: { auth: 'required' },
      schema: {
        tags,
        summary: on ? 'Favourite a spot (idempotent)' : 'Unfavourite a spot (idempotent)',
        security: bearer,
        params: SpotParams,
        response: { 204: Type.Null() },
        errorCodes: ['SPOT_NOT_FOUND'],
      },
      handler: async (request, reply) => {
        await spots.favourite(request.params.id, on, signedIn(request));
        return reply.code(204).send(null);
      },
    });
  }

  app.post(
    '/:id/reports',
    {
      config: {
        auth: 'required',
        rateLimit: [
          { name: 'spots-report', limit: limits.reportsPerHour, windowSeconds: 3600, by: 'user' },
        ],
      },
      schema: {
        tags,
        summary: 'Report a spot (once per user; past the threshold it goes to review)',
        security: bearer,
        params: SpotParams,
        body: ReportBody,
        response: { 201: ReportResponse, 200: ReportResponse },
        errorCodes: ['SPOT_NOT_FOUND', 'CANNOT_REPORT_OWN_SPOT'],
      },
    },
    async (request, reply) => {
      const outcome = await spots.report(request.params.id, request.body.reason, signedIn(request));
      return reply.code(outcome.reported ? 201 : 200).send(outcome);
    },
  );

  app.post(
    '/:id/hide',
    {
      config: { permission: SPOTS_MODERATE },
      schema: {
        tags,
        summary: 'Hide a spot from every public read (moderators)',
        security: bearer,
        params: SpotParams,
        body: HideBody,
        response: { 200: SpotDetail },
        errorCodes: ['SPOT_NOT_FOUND'],
      },
    },
    (request) => spots.hide(request.params.id, request.body.reason, viewer(request)),
  );

  app.post(
    '/:id/restore',
    {
      config: { permission: SPOTS_MODERATE },
      schema: {
        tags,
        summary: 'Make a hidden or pending spot public again (moderators)',
        security: bearer,
        params: SpotParams,
        response: { 200: SpotDetail },
        errorCodes: ['SPOT_NOT_FOUND'],
      },
    },
    (request) => spots.restore(request.params.id, viewer(request)),
  );
  return Promise.resolve();
}
